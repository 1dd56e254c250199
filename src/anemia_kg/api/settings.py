"""Server settings: from the command line, or from ANEMIA_KG_* environment variables when run by uvicorn."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything that decides where the data comes from and how much work one request may cost."""

    model_config = SettingsConfigDict(env_prefix="ANEMIA_KG_", frozen=True)

    root: Path = Field(default_factory=Path.cwd, description="Project folder holding data/ and ontology/.")
    store: Path | None = Field(None, description="On-disk Oxigraph store folder; in memory when None.")
    endpoint: str | None = Field(None, description="Remote SPARQL 1.1 query endpoint to serve from instead.")
    workers: int = Field(2, ge=1, le=32, description="Query worker processes of the embedded store.")
    query_timeout: float = Field(5.0, gt=0, le=600, description="Seconds a SPARQL query may run.")
    max_rows: int = Field(10_000, ge=1, description="Most rows (or triples) one SPARQL answer may hold.")
    query_memory_mb: int = Field(1024, ge=0, description="Megabytes of memory one SPARQL query may add to its "
                                 "worker process before the worker is stopped (embedded store); 0: no limit.")
    max_query_bytes: int = Field(100_000, ge=100, description="Largest accepted query text, in bytes.")
    path_time_budget: float = Field(1.0, gt=0, le=30, description="Seconds one path search may take.")
    cache_bytes: int = Field(64 * 1024 * 1024, ge=0, description="Bytes of successful /sparql and /api answers "
                             "kept to answer the same request again (the graph is read-only); 0 turns it off.")
    # Request size limits (RequestLimits in security.py), checked before any route runs. The URL limit is
    # below the 16 KiB that uvicorn's parser allows for the whole request head, so that a long GET query gets
    # a clear 414 ("use POST") rather than the parser's bare 400.
    max_body_bytes: int = Field(1_048_576, ge=1_024, description="Largest accepted request body, in bytes.")
    max_url_bytes: int = Field(8_192, ge=256, description="Longest accepted URL (path and query string), in bytes.")
    max_header_bytes: int = Field(8_192, ge=1_024,
                                  description="Largest accepted total of header names and values, in bytes.")
