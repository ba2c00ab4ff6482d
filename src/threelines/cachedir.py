"""Where threelines keeps what it can compute again: prepared layers and checked YAML documents.

Kept apart from the caches themselves so that finding the folder imports nothing heavy.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable that sets the cache folder.
CACHE_ENV = "THREELINES_CACHE"


def cache_folder() -> Path:
    """Where prepared layers and checked documents are kept.

    ``$THREELINES_CACHE``, else ``$XDG_CACHE_HOME/threelines``, else ``~/.cache/threelines``.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "threelines"
