"""Deciding the CRS of a footprint file's coordinates: from the file, ``--crs`` or the coordinates themselves.

:func:`~threelines.input.drawn.drawn_projects` asks once per file (for a piece
of a large file, with the whole file's extent, so that every piece gets the
same answer), before any feature is placed. The checks of coordinates against
a CRS (swapped axes, metres labelled as degrees, places outside China), the
Gauss-Kruger zones and the web-map offsets are in :mod:`threelines.input.crs`.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import shapely
from pyproj import CRS

from threelines.errors import CRSError, FootprintError
from threelines.input.crs import WEB_OFFSETS, diagnose, gk_zone_crs, inside_china, parse_crs

log = logging.getLogger(__name__)


def footprint_crs(geoms: np.ndarray, file_crs: CRS | None, given, label: str, bounds=None, announce=True, skip=()):
    """Decide the footprints' CRS from the file, ``--crs`` and the coordinates themselves.

    ``--crs gcj02`` / ``bd09`` convert web-map coordinates to WGS84 first. A
    file without a CRS whose eastings carry a Gauss-Kruger zone prefix is
    read in that zone, and stderr says so. The classic mistakes (swapped
    axes, metres labelled as degrees, places outside China) are caught here:
    for the file as a whole when most of its features make them, otherwise
    for the few that do, which are then that feature's problem.

    ``file_crs`` is the CRS the file declares (None: none); ``bounds`` (the
    whole file's, for a piece of it) replaces the footprints' own;
    ``announce`` False keeps what was decided out of the log; ``skip`` holds
    positions of features already refused (their coordinates do not count).

    Returns
    -------
    (numpy.ndarray, pyproj.CRS, dict)
        The footprints (converted if they were in a web-map offset), their
        CRS, and for each feature that does not fit it, by position, what is wrong.
    """
    say = log if announce else _SILENT
    each = shapely.bounds(geoms)
    usable = np.isfinite(each).all(axis=1)
    usable[list(skip)] = False
    if bounds is None:
        bounds = _extent(each[usable])
    misfits: dict[int, str] = {}
    try:
        try:
            chosen = _decide_crs(bounds, file_crs, given, label, say)
        except CRSError as exc:  # the whole file, or only a few of its features?
            chosen, misfits = _judge_each(each, usable, file_crs, given, label, exc)
            _decide_crs(_extent(each[[i for i in np.flatnonzero(usable) if i not in misfits]]), file_crs, given,
                        label, say)  # fmt: skip
    except CRSError as exc:
        raise FootprintError(str(exc)) from None
    if given is not None and str(given).strip().lower() in WEB_OFFSETS:
        geoms = shapely.transform(geoms, WEB_OFFSETS[str(given).strip().lower()])
        say.info("%s: converted from %s web-map coordinates to WGS84", label, given)
    return geoms, chosen, misfits


def _extent(bounds: np.ndarray):
    """The extent of per-feature bounds (rows of minx, miny, maxx, maxy); NaN when there are none."""
    if len(bounds) == 0:
        return (np.nan,) * 4
    return (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())


def _decide_crs(bounds, file_crs: CRS | None, given, label: str, say, strict: bool = False) -> CRS:
    """The CRS of coordinates within ``bounds``, from the file, ``--crs`` or the coordinates; or a CRSError."""
    located = bool(np.isfinite(bounds).all())  # all geometries empty: each feature reports it
    if given is not None and str(given).strip().lower() in WEB_OFFSETS:
        if file_crs is not None and not file_crs.is_geographic:
            raise CRSError(f"{label}: --crs {given} is for longitude/latitude, but the file is in {file_crs.name}")
        if located:
            diagnose(bounds, CRS.from_epsg(4326), label)
        return CRS.from_epsg(4326)
    if given is not None:
        chosen = parse_crs(given)
        if file_crs is not None and not file_crs.equals(chosen):
            say.warning("%s: the file says its CRS is %s; using --crs %s as given", label, file_crs.name, chosen.name)
    elif file_crs is not None:
        chosen = file_crs
    else:
        chosen = gk_zone_crs(bounds) if located else None
        if chosen is None:
            if located:
                diagnose(bounds, None, label)  # a clear hint for swapped, unprefixed or mixed coordinates
            where = " (a shapefile needs its .prj)" if label.lower().endswith(".shp") else ""
            raise CRSError(
                f"{label}: has no CRS{where}; say which it is with --crs, e.g. --crs 4490 "
                "(CGCS2000 lon/lat) or --crs 4527 (CGCS2000 Gauss-Kruger zone 39, prefixed easting)"
            )
        say.warning(
            "%s: no CRS given; the eastings carry zone prefix %d, so they are read as %s (EPSG:%d)",
            label, int(bounds[0] // 1_000_000), chosen.name, chosen.to_epsg(),
        )  # fmt: skip
    if located:
        diagnose(bounds, chosen, label, strict=strict)
    return chosen


#: How many failing features to ask for the reason a file is refused.
_REASON_SAMPLE = 50


def _said_crs(file_crs: CRS | None, given) -> CRS | None:
    """The CRS the coordinates are said to be in (by --crs or the file), or None when only they can tell."""
    if given is not None:
        return CRS.from_epsg(4326) if str(given).strip().lower() in WEB_OFFSETS else parse_crs(given)
    return file_crs


def _judge_each(each: np.ndarray, usable: np.ndarray, file_crs, given, label: str, whole: CRSError):
    """Judge the features one by one after the file as a whole failed; keep the file if most of them pass.

    Returns the CRS most features fit and, by position, why each of the
    others does not. When most features fail, the file (not a few outliers)
    is wrong: raises the reason most of them give (``whole`` if none does).
    Runs only for a file that failed; the features that plainly fit a CRS
    the file or ``--crs`` names are found over the array, the rest one by one.
    """
    positions = np.flatnonzero(usable)
    fits: dict[int, CRS | str] = {}
    rest = positions
    said = _said_crs(file_crs, given)
    if said is not None:  # the features that plainly fit it are found at once; only the others one by one
        fit = inside_china(each[positions], said)
        fits.update(dict.fromkeys(positions[fit].tolist(), said))
        rest = positions[~fit]
        if 2 * fit.sum() <= len(positions):
            rest = rest[:_REASON_SAMPLE]  # the file is refused: a sample of its features gives the reason
    for i in rest:
        try:
            fits[int(i)] = _decide_crs(tuple(each[i]), file_crs, given, label, _SILENT, strict=True)
        except CRSError as exc:
            fits[int(i)] = str(exc).removeprefix(f"{label}: ")
    distinct = {id(fit): fit for fit in fits.values() if isinstance(fit, CRS)}  # the same few objects
    wkts = {key: fit.to_wkt() for key, fit in distinct.items()}
    votes = Counter(wkts[id(fit)] for fit in fits.values() if isinstance(fit, CRS))
    wkt, count = votes.most_common(1)[0] if votes else (None, 0)
    if 2 * count <= len(positions):  # most fail: the file is wrong, for the reason most of its features give
        reasons = Counter(fit for fit in fits.values() if isinstance(fit, str))
        raise CRSError(f"{label}: {reasons.most_common(1)[0][0]}") if reasons else whole
    chosen = next(fit for fit in fits.values() if isinstance(fit, CRS) and wkts[id(fit)] == wkt)
    misfits = {}
    for i, fit in fits.items():
        if isinstance(fit, str) and not fit.startswith("has no CRS"):
            misfits[i] = fit
        elif isinstance(fit, str) or wkts[id(fit)] != wkt:
            x, y = each[i][:2]
            misfits[i] = (
                f"its coordinates (such as {x:.1f}, {y:.1f}) do not fit {chosen.name}, which most of the file's "
                "features fit; check them"
            )
    return chosen, misfits


class _Silent:
    """A logger that says nothing: for a file's later pieces, whose CRS was announced with the first."""

    def info(self, *args) -> None:
        pass

    warning = info


_SILENT = _Silent()
