"""The HTTP side: one FastAPI application serving the SPARQL endpoint, the entity and path API and the pages.

``create_app`` is imported when first asked for: ``anemia-kg serve`` starts the query workers (from
``api.services``) before it imports FastAPI and the routes, so that the workers open the dataset meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
