"""requestforge_django: outbound service-to-service HTTP for Django."""

__version__ = "0.1.0"
