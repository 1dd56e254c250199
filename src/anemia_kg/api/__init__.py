"""The HTTP side: one FastAPI application serving the SPARQL endpoint, the entity and path API and the pages."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
