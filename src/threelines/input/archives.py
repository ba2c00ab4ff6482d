"""Zip archives from outside (a zip of footprints, a KMZ, an XLSX), checked before anything is unpacked.

A zip's central directory says how many members it holds and how large
each one unpacks; a bomb (a few MB unpacking to GBs) or an archive of
100,000 members is refused from that alone, before a byte is written.
Members are then copied out one at a time with a byte counter, so that a
header that lies about a member's size cannot write more than it declared.
Members whose names would land outside the target folder (absolute paths,
``..``) refuse the archive; members that are symbolic links are skipped.
"""

from __future__ import annotations

import logging
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from threelines.errors import FootprintError
from threelines.limits import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS, MAX_COMPRESSION_RATIO, MIN_RATIO_CHECK_BYTES

log = logging.getLogger(__name__)

#: Errors the zipfile module raises for archives that are broken or use what it cannot unpack.
ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error
)  # fmt: skip

_CHUNK = 1 << 20


def check_members(members: list[zipfile.ZipInfo], label: str) -> None:
    """Refuse an archive whose central directory exceeds the limits on members, bytes or compression ratio.

    Parameters
    ----------
    members : list of zipfile.ZipInfo
        The archive's central directory.
    label : str
        The archive, for messages.

    Raises
    ------
    FootprintError
        Naming the limit that was exceeded.
    """
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise FootprintError(
            f"{label}: the archive holds {len(members):,} members, more than the limit of {MAX_ARCHIVE_MEMBERS:,}; "
            "split it into smaller archives"
        )
    total = sum(info.file_size for info in members)
    if total > MAX_ARCHIVE_BYTES:
        raise FootprintError(
            f"{label}: the archive unpacks to {total:,} bytes, more than the limit of {MAX_ARCHIVE_BYTES:,}; "
            "split it into smaller archives"
        )
    for info in members:
        # Small members may compress very well and do no harm; only a large one is a bomb.
        if info.file_size > MIN_RATIO_CHECK_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            raise FootprintError(
                f"{label}: member {info.filename!r} unpacks {info.file_size / max(info.compress_size, 1):,.0f} "
                f"times larger than it is packed, beyond the limit of {MAX_COMPRESSION_RATIO}:1 (a zip bomb?); "
                "refused without unpacking it"
            )


def check_zip_file(path: Path, label: str) -> None:
    """Check a file that is a zip inside (KMZ, XLSX) against the archive limits, without unpacking it.

    A file that is not a zip at all is left for its reader to report.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except ZIP_ERRORS:
        return
    check_members(members, label)


def extract_zip(path: Path, folder: Path, label: str) -> None:
    """Unpack a zip archive into a folder, within the limits; refuse it otherwise.

    Parameters
    ----------
    path : Path
        The archive.
    folder : Path
        An empty folder to unpack into.
    label : str
        The archive, for messages.

    Raises
    ------
    FootprintError
        For an unreadable archive, one beyond the limits (checked on the
        central directory before anything is written), a member named
        outside the folder, or a member holding more than its header says.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            check_members(members, label)
            budget = sum(info.file_size for info in members)
            for info in members:
                budget -= _extract_member(archive, info, folder, label, budget)
    except FootprintError:
        raise
    except ZIP_ERRORS as exc:
        raise FootprintError(f"{label}: is not a readable zip archive ({exc})") from None


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, folder: Path, label: str, budget: int) -> int:
    """Copy one member out, counting its bytes; return how many were written."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and parts[0].endswith(":")) or ".." in parts:
        raise FootprintError(
            f"{label}: member {info.filename!r} would be unpacked outside the archive's folder; "
            "the archive is refused (rebuild it with plain relative names)"
        )
    if info.is_dir() or not parts:
        return 0
    if stat.S_ISLNK(info.external_attr >> 16):
        log.warning("%s: skipped member %s: it is a symbolic link", label, info.filename)
        return 0
    target = folder.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    limit = min(info.file_size, budget)
    written = 0
    with archive.open(info) as src, target.open("wb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > limit:  # a header that lies: never write more than was declared
                raise FootprintError(
                    f"{label}: member {info.filename!r} holds more than the {info.file_size:,} bytes its header "
                    "declares; the archive is refused"
                )
            out.write(chunk)
    return written
