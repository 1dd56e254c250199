"""Writing a file so that no reader ever sees half of it: a temporary file beside it, then one rename.

Used for the caches under ``data/.cache/`` (the cross-reference verdicts, the knowledge model's snapshot); the
build and the on-disk store publish whole folders the same way, with a symlink swap of their own.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (the folder is made if needed); nothing is left behind on failure.

    The file is private (0600, as ``mkstemp`` makes it) unless ``mode`` says otherwise. Leftovers of a writer
    that was killed are named ``.<name>.*.tmp``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
