"""The raster-grid cache: a small raster band's cells and grid, kept on disk so that a run needs no GDAL.

Reading a raster's cells needs rasterio, whose import and GDAL set-up cost
more than the rest of screening one project. A band of at most
:data:`threelines.limits.MAX_CACHED_GRID_CELLS` cells is therefore kept, next to
the prepared layers, as one uncompressed ``.npz`` archive: its cells as
floats (nodata already NaN, as :mod:`threelines.layers.rasters` reads them), the
affine transform (6 numbers, as a :class:`Transform`), height, width and the file's CRS as WKT. It is
read with ``np.load(allow_pickle=False)``, never unpickling anything (the
folder may be written by anyone).

The file is named after a SHA-256 of the raster's bytes (with the sidecar
files GDAL reads its georeferencing or nodata from), the band and
:data:`GRID_FORMAT`; the archive holds that name again, so a file copied or
renamed into place is not taken for another raster's grid. A file that
cannot be read, or holds anything unexpected, is ignored and the raster read
again; writes go to a temporary file renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from threelines.layers.cache import files_sha256
from threelines.layers.spec import LayerSpec
from threelines.limits import MAX_CACHED_GRID_CELLS
from threelines.report.provenance import data_files

log = logging.getLogger(__name__)

#: Bumped whenever what a grid file holds, or how the cells are read, changes.
GRID_FORMAT = 1

#: The suffix of a grid file.
GRID_SUFFIX = ".grid.npz"

#: Files beside a raster that GDAL reads its transform, CRS or nodata from (``{}`` is the raster's name).
SIDECARS = ("{}.aux.xml", "{stem}.tfw", "{stem}.tifw", "{stem}.wld", "{stem}.prj", "{}.msk")


class Transform(NamedTuple):
    """A raster's affine transform, from (column, row) to (x, y): ``x = a*col + b*row + c``, ``y = d*col + e*row + f``.

    The six numbers of :class:`affine.Affine` and the two operations the
    zonal statistics use, ``transform @ (xs, ys)`` and ``~transform``, with
    its formulas written in its order, so that every result is the same to
    the last bit (tests/test_transform.py holds them to that). Importing
    affine (and attrs, which it needs) would cost a run that reads a kept
    grid about a tenth of its start-up, for this arithmetic alone; where
    rasterio is used anyway, its ``affine.Affine`` is converted.
    """

    a: float
    b: float
    c: float
    d: float
    e: float
    f: float

    @classmethod
    def of(cls, numbers) -> Transform:
        """The transform of six numbers (an ``affine.Affine``, an array of them), each as a Python float."""
        return cls(*(float(v) for v in tuple(numbers)[:6]))

    def __matmul__(self, xy):
        """The points ``xy = (xs, ys)`` (numbers or arrays) transformed: ``(xs', ys')``."""
        x, y = xy
        return (x * self.a + y * self.b + self.c, x * self.d + y * self.e + self.f)

    def __invert__(self) -> Transform:
        """The inverse transform; ValueError for a degenerate one."""
        determinant = self.a * self.e - self.b * self.d
        if determinant == 0.0:
            raise ValueError("a degenerate raster transform has no inverse")
        idet = 1.0 / determinant
        ra = self.e * idet
        rb = -self.b * idet
        rd = -self.d * idet
        re = self.a * idet
        return Transform(ra, rb, -self.c * ra - self.f * rb, rd, re, -self.c * rd - self.f * re)


@dataclass(frozen=True)
class Grid:
    """One raster band: transform, size, CRS (WKT; empty without one), cells (floats, nodata NaN; None: not read)."""

    transform: Transform
    height: int
    width: int
    crs: str
    cells: np.ndarray | None


def grid_path(spec: LayerSpec, folder: Path) -> Path | None:
    """Where a raster layer's grid is kept in ``folder``, or None when it is not kept (too large, not a local file).

    A file larger than the cells it could hold (8 bytes each) is not hashed
    at all: its grid is too large to keep.
    """
    try:
        files = data_files(spec.path)
        raster = Path(spec.path)
        extra = [p for p in (raster.parent / s.format(raster.name, stem=raster.stem) for s in SIDECARS) if p.is_file()]
        if not files or sum(p.stat().st_size for p in files) > 8 * MAX_CACHED_GRID_CELLS:
            return None
        digest = hashlib.sha256(json.dumps({"format": GRID_FORMAT, "band": spec.band}).encode())
        digest.update(files_sha256(files).encode())
        for path in extra:
            digest.update(path.name.encode() + b"\0" + files_sha256([path]).encode())
    except (OSError, TypeError, ValueError):  # not a local file (a URL, a /vsi path): read as it is each time
        return None
    return folder / f"{digest.hexdigest()}{GRID_SUFFIX}"


def load_grid(path: Path, spec: LayerSpec) -> Grid | None:
    """The grid kept at ``path`` (see :func:`grid_path`), or None (with a note at -v) if there is none to trust."""
    if not path.exists():
        return None
    try:
        # Opened here, not by np.load: it leaves a file that is no archive open.
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as archive:
            if str(archive["key"]) != path.name.removesuffix(GRID_SUFFIX) or int(archive["format"]) != GRID_FORMAT:
                raise ValueError("the grid of another raster")
            transform, size, crs, cells = archive["transform"], archive["size"], archive["crs"], archive["cells"]
        height, width = (int(n) for n in size)
        if transform.shape != (6,) or transform.dtype != np.float64 or not np.isfinite(transform).all():
            raise ValueError("not a transform")
        if cells.dtype != np.float64 or cells.shape != (height, width) or cells.size > MAX_CACHED_GRID_CELLS:
            raise ValueError("cells of the wrong kind or size")
        cells.flags.writeable = False
        return Grid(Transform.of(transform.tolist()), height, width, str(crs), cells)
    except Exception as exc:  # any damage to a grid file means: read the raster again
        log.info("layer %r: grid file %s cannot be used (%s); reading the raster again", spec.name, path, exc)
        return None


def store_grid(grid: Grid, path: Path, spec: LayerSpec) -> None:
    """Keep a grid at ``path`` when it is small enough, atomically; a failure to write is only noted (at -v)."""
    if grid.cells.size > MAX_CACHED_GRID_CELLS:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            np.savez(
                out, key=np.array(path.name.removesuffix(GRID_SUFFIX)), format=np.array(GRID_FORMAT),
                transform=np.array(grid.transform, dtype=np.float64), size=np.array([grid.height, grid.width]),
                crs=np.array(grid.crs), cells=grid.cells,
            )  # fmt: skip
        os.replace(tmp, path)
    except Exception as exc:  # the cache only saves time: never fail a run over it
        log.info("layer %r: cannot write the grid file %s (%s)", spec.name, path, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
