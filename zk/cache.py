"""Where zk keeps derived, reproducible data (generators, the extracted mcl library).

Everything under this directory can be deleted at any time: it is recomputed on demand.
Override with the FEDMARKET_CACHE_DIR environment variable or pass a directory explicitly.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ENV_VAR = "FEDMARKET_CACHE_DIR"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache root: `override`, else $FEDMARKET_CACHE_DIR, else ~/.cache/fedmarket."""
    if override is not None:
        root = Path(override)
    elif os.environ.get(ENV_VAR):
        root = Path(os.environ[ENV_VAR])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fedmarket"
    root.mkdir(parents=True, exist_ok=True)
    return root


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
