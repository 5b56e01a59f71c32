"""The customer base every addon stands on: organisation, customers, contacts, products, activities."""
