"""The framework-free HTTP core: imports only the standard library and ``requests``."""
