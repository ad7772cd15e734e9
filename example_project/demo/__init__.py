"""The demo: a page and a command that call the partner APIs through ``get_client(...)``."""
