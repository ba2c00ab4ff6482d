"""Guess the attribute encoding of a shapefile that does not declare one.

A shapefile's attributes live in its .dbf; the encoding is declared by a
.cpg file or the DBF's language-driver byte. Chinese agencies often ship
GBK files with neither, which GDAL then reads as Latin-1: the names come
out as mojibake and Chinese column names are not recognised. Here the raw
bytes decide: ASCII needs nothing, valid UTF-8 is UTF-8, and bytes that
decode as GB18030 (a superset of GBK and GB2312) are GB18030.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

log = logging.getLogger(__name__)

#: How much of a .dbf to look at (header, field names and the first records).
SAMPLE_BYTES = 1 << 20

#: DBF language-driver ids that declare an encoding GDAL honours.
_DECLARED_LDIDS = {0x4D: "CP936", 0x57: "ISO-8859-1", 0x03: "CP1252"}


def guess_encoding(path: str | Path) -> str | None:
    """Return the encoding to read a shapefile's attributes with, or None to let GDAL decide.

    Parameters
    ----------
    path : str or Path
        A ``.shp`` (or ``.dbf``) file. Other formats declare their encoding
        and give None.

    Returns
    -------
    str or None
        ``"UTF-8"`` or ``"GB18030"`` when the file does not declare an
        encoding and its bytes show one; None otherwise.
    """
    path = Path(path)
    if path.suffix.lower() not in (".shp", ".dbf"):
        return None
    if any(path.with_suffix(s).exists() for s in (".cpg", ".CPG")):
        return None
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return None
    with dbf.open("rb") as fh:
        raw = fh.read(SAMPLE_BYTES)
    if len(raw) < 32 or raw[29] in _DECLARED_LDIDS:
        return None
    header_length = struct.unpack("<H", raw[8:10])[0]
    body = raw[32:header_length] + raw[header_length:]
    if body.isascii():
        return None
    for encoding in ("UTF-8", "GB18030"):
        try:
            _decode_whole(body, encoding)
        except UnicodeDecodeError:
            continue
        log.info("%s: no .cpg; attributes read as %s (guessed from the bytes; --encoding overrides)", path, encoding)
        return encoding
    return None


def _decode_whole(body: bytes, encoding: str) -> None:
    """Decode, forgiving only a multi-byte character cut at the end of the sample."""
    try:
        body.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(body) - 4:
            raise
