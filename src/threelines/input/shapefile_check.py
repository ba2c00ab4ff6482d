"""A shapefile's three files checked from their headers, before GDAL reads them.

GDAL reads a ``.dbf`` of random bytes as a table without fields and a cut
``.shp`` as empty geometries, so that a broken shapefile would be screened
as a project without attributes. Sizes, versions, field descriptors and
record counts are checked here first, each failure one line naming the file.
"""

from __future__ import annotations

import struct
from pathlib import Path

from threelines.errors import FootprintError

#: First bytes of the dBase tables GDAL reads (dBase III-5, FoxPro, Visual FoxPro).
_DBF_VERSIONS = frozenset({0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B, 0x8E, 0xCB, 0xF5, 0xFB})

#: Field types of a dBase table.
_DBF_TYPES = frozenset(b"CNFLDMBGIPTY@O+0VW")


def check_shapefile(shp: Path, shx: Path, dbf: Path, label: str) -> None:
    """Refuse a truncated or corrupt .shp, .shx or .dbf, which GDAL reads as empty shapes or no attributes.

    GDAL reads the records before a cut as usual and the rest as empty
    geometries, and reads an unreadable .dbf as a table without fields:
    the project would be screened without its industry. The headers say how
    long each file must be and what the table holds, so the check is cheap.
    """
    shapes = None
    for part, role in ((shp, "geometry"), (shx, "index")):
        size = part.stat().st_size
        with part.open("rb") as fh:
            head = fh.read(100)
        if len(head) >= 4 and struct.unpack(">i", head[:4])[0] != 9994:
            if part is shp:
                return  # not a shapefile inside (GeoJSON saved as .shp?): GDAL reads it by its content
            raise FootprintError(
                f"{label}: {part.name} (the shapefile's {role}) is corrupt: it does not start with a "
                "shapefile header; copy every file of the shapefile again"
            )
        if len(head) < 100:
            raise FootprintError(
                f"{label}: {part.name} (the shapefile's {role}) is truncated: {len(head)} bytes, shorter than "
                "a shapefile header; copy every file of the shapefile again"
            )
        declared = struct.unpack(">i", head[24:28])[0] * 2
        if size < declared:
            raise FootprintError(
                f"{label}: {part.name} (the shapefile's {role}) is truncated: {size:,} of the {declared:,} bytes its "
                "header declares; copy every file of the shapefile again"
            )
        if part is shx:
            shapes = (min(size, declared) - 100) // 8
    problem = _dbf_problem(dbf, shapes)
    if problem:
        raise FootprintError(
            f"{label}: cannot read the attribute table {dbf.name} ({problem}); copy every file of the shapefile "
            "again, or export it anew"
        )


def _dbf_problem(dbf: Path, shapes: int | None) -> str | None:
    """What is wrong with a .dbf's header, or None: version, field descriptors, length, record count."""
    size = dbf.stat().st_size
    with dbf.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32 or head[0] not in _DBF_VERSIONS:
            return "it is not a dBase table: its header is missing or garbled"
        count, header_length, record_length = struct.unpack("<IHH", head[4:12])
        descriptors = fh.read(max(header_length - 32, 0))
    widths, at = [], 0
    while at < len(descriptors) and descriptors[at] != 0x0D:
        field = descriptors[at : at + 32]
        if len(field) < 32 or field[11] not in _DBF_TYPES:
            return "its field descriptors are garbled"
        widths.append(field[16])
        at += 32
    if at >= len(descriptors) or header_length < 33 or 1 + sum(widths) != record_length:
        return "its header is garbled"
    expected = header_length + count * record_length
    if size < expected:
        return f"it is truncated: {size:,} of {expected:,} bytes"
    if shapes is not None and count != shapes:
        return f"it holds {count:,} records for the {shapes:,} shapes of the .shp"
    return None
