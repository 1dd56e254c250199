"""Load the built dataset into an embedded Oxigraph store, where SPARQL runs on Oxigraph's own engine.

Only the built artifact crosses from the build side to the serving side: the store is filled from the
N-Quads file that ``anemia-kg build`` wrote, never from the curation objects.
"""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox


class StoreError(Exception):
    """The built dataset cannot be loaded."""


def open_memory_store(nquads: Path) -> ox.Store:
    """An in-memory Oxigraph store holding the dataset's named graphs."""
    store = ox.Store()
    try:
        with open(nquads, "rb") as fh:
            store.bulk_load(fh, format=ox.RdfFormat.N_QUADS)
    except FileNotFoundError:
        raise StoreError(f"{nquads}: no built dataset; run `anemia-kg build` first") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise StoreError(f"{nquads}: cannot load the built dataset: {exc}; rebuild it with `anemia-kg build`") from None
    return store
