"""Writers that turn verdicts into text for people and JSON for programs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from threelines.errors import OutputError


def write_output(text: str, path: str | Path, *, overwrite: bool = False) -> None:
    """Write a report file, never replacing an existing one unless asked.

    The text goes to a temporary file beside the target first, so an
    interrupted write never leaves half a report behind.

    Raises
    ------
    OutputError
        If the file exists and ``overwrite`` is false, or cannot be written.
    """
    path = Path(path)
    refuse_existing(path, overwrite=overwrite)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a report is an ordinary file
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write it ({exc.strerror})") from None


def refuse_existing(path: str | Path, *, overwrite: bool = False) -> None:
    """Refuse an output file that exists (unless ``overwrite``): checked before the work, and again when writing.

    Raises
    ------
    OutputError
        If the file exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: exists; give --overwrite to replace it, or another -o")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
