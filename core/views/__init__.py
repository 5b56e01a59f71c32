"""The core's web pages, one blueprint per concern."""
