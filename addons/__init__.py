"""The built-in addons of Mosaic CRM. Each is found through the ``mosaic.addons`` entry point."""
