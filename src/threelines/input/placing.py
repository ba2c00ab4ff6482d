"""What each feature becomes once placed in the working CRS: its footprint, and the footprints' areas.

:meth:`~threelines.input.drawn.DrawnProjects.place` reprojects a file's
features, then makes their footprints here: the plain polygons and the plain
lines with a width over the whole array (:func:`plain_polygons`,
:func:`plain_lines`), any other feature alone (:func:`one_footprint`: polygons
repaired, lines buffered by their width, points as sites or discs), and the
kept footprints' areas, on the ellipsoid and in the plane of a projected file
CRS (:func:`footprint_areas`, :func:`plane_areas`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from shapely import GeometryType

from threelines.curves import disc, disc_area, disc_centres, outer_buffer
from threelines.errors import FootprintError
from threelines.input.crs import to_crs

log = logging.getLogger(__name__)


def footprint_areas(geometry: np.ndarray, attrs: list[dict[str, Any]]) -> np.ndarray:
    """Footprint areas (m2) in the working CRS; a point site's disc counts as the exact circle, pi r^2."""
    area = shapely.area(geometry) if len(geometry) else np.empty(0)
    radii = np.array([a.get("radius") or 0.0 for a in attrs], dtype=float)
    if (radii > 0).any():
        centres = disc_centres(geometry, radii)
        exact = np.flatnonzero(centres != None)  # noqa: E711
        area[exact] = [disc_area(radii[p]) for p in exact.tolist()]
    return area


def plane_areas(native, file_crs: CRS, working_crs: CRS, geometry, simple, kept) -> np.ndarray:
    """Per kept project, its area in the plane of a projected file CRS (NaN for longitude/latitude).

    Plain polygons are measured as drawn; lines and discs, built in the
    working CRS, are measured after going back to the file's CRS.
    """
    if file_crs.is_geographic or not len(kept):
        return np.full(len(kept), np.nan)
    plane = np.empty(len(kept))
    drawn = simple[kept]
    plane[drawn] = shapely.area(native[kept[drawn]])
    if (~drawn).any():
        plane[~drawn] = shapely.area(to_crs(geometry[~drawn], working_crs, file_crs))
    return plane


def plain_polygons(geoms: np.ndarray, placed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which footprints are plain valid polygons with an area, and their footprints, over the whole array.

    These need nothing of :func:`one_footprint` but what it would do to them:
    a one-part multipolygon becomes its polygon. The others (lines, points,
    collections, invalid or empty geometries) go through :func:`one_footprint`.
    """
    kinds = shapely.get_type_id(geoms)
    parts = shapely.get_num_geometries(geoms)
    simple = placed & ((kinds == GeometryType.POLYGON) | ((kinds == GeometryType.MULTIPOLYGON) & (parts >= 1)))
    simple[simple] = shapely.is_valid(geoms[simple]) & (shapely.area(geoms[simple]) > 0)
    ready = geoms.copy()
    single = simple & (kinds == GeometryType.MULTIPOLYGON) & (parts == 1)
    ready[single] = shapely.get_geometry(geoms[single], 0)
    return simple, ready


def plain_lines(geoms: np.ndarray, usable: np.ndarray, checked: list[dict[str, Any] | None]) -> dict[int, Any]:
    """The footprints of plain lines with a width, by position: buffered over the array, one call per width.

    These are single non-empty linestrings whose attributes passed and give a
    width: :func:`one_footprint` would union each (noding it) and buffer it by
    half its width, as here. The others (no width, zero length, several
    parts) go through :func:`one_footprint`, which says what is wrong.
    """
    kinds = shapely.get_type_id(geoms)
    candidates = usable & (kinds == GeometryType.LINESTRING) & ~shapely.is_empty(geoms)
    positions = np.flatnonzero(candidates)
    positions = np.array([i for i in positions.tolist() if checked[i] is not None and checked[i]["width"]], dtype=int)
    if not len(positions):
        return {}
    lines = shapely.union_all(geoms[positions][:, np.newaxis], axis=1)  # each line alone, as one_footprint does
    keep = shapely.length(lines) > 0
    positions, lines = positions[keep], lines[keep]
    widths = np.array([checked[i]["width"] for i in positions.tolist()], dtype=float)
    out = np.empty(len(positions), dtype=object)
    for width in dict.fromkeys(widths.tolist()):  # (not np.unique: see threelines.arrays)
        same = widths == width
        out[same] = outer_buffer(lines[same], width / 2.0, cap_style="flat", join_style="round")
    return dict(zip(positions.tolist(), out.tolist(), strict=True))


def _default_width(project: dict[str, Any], line_widths: dict[str, float], where: str) -> float | None:
    """The manifest's default width for a line of this industry (longest matching prefix, else ``*``)."""
    code = project.get("industry") or ""
    prefixes = sorted((p for p in line_widths if p != "*" and code.startswith(p)), key=len, reverse=True)
    key = prefixes[0] if prefixes else ("*" if "*" in line_widths else None)
    if key is None:
        return None
    log.warning(
        "%s: a line without a width; buffered by the manifest's default of %g m for %s (give --width for the real one)",
        where, line_widths[key], "every industry" if key == "*" else key,
    )  # fmt: skip
    project["width"] = float(line_widths[key])
    return project["width"]


def one_footprint(geom, project: dict[str, Any], label: str, line_widths: dict[str, float]):
    """Turn one feature's geometry into its footprint; set ``kind`` if not given.

    Polygons are repaired if invalid (with a warning giving the area change),
    lines are buffered by half their width on each side, points stay points
    (or become discs of the project's ``radius``).
    """
    where = f"{label}: project {project['id']!r}"
    if geom is None or shapely.is_empty(geom):
        raise FootprintError(f"{where}: has an empty geometry; draw the footprint or remove the feature")
    parts = shapely.get_parts(geom)
    while (shapely.get_type_id(parts) == GeometryType.GEOMETRYCOLLECTION).any():
        parts = shapely.get_parts(parts)  # a collection: look at its members
    kinds = shapely.get_type_id(parts)
    polygons = parts[kinds == GeometryType.POLYGON]
    lines = parts[np.isin(kinds, (GeometryType.LINESTRING, GeometryType.LINEARRING))]
    if len(polygons):  # polygonal parts win; lines and points beside them are left out
        geom = polygons[0] if len(polygons) == 1 else shapely.multipolygons(polygons)
        if not shapely.is_valid(geom):
            before, reason = shapely.area(geom), shapely.is_valid_reason(geom)
            geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
            log.warning(
                "%s: repaired an invalid polygon (%s); area changed by %.1f m2; check the drawing",
                where, reason, abs(shapely.area(geom) - before),
            )  # fmt: skip
        if shapely.area(geom) == 0:
            raise FootprintError(f"{where}: is a polygon with no area (all its vertices on a line?); check the drawing")
        project["kind"] = project["kind"] or "area"
        return geom
    if len(lines):
        width = project["width"] or _default_width(project, line_widths, where)
        if not width:
            raise FootprintError(
                f"{where}: is a line and needs a width to become a footprint; give a 'width' column or --width "
                "in metres (e.g. 30 for a road), or default widths in the manifest's line_widths"
            )
        project["kind"] = project["kind"] or "linear"
        lines = shapely.union_all(lines)
        if shapely.length(lines) == 0:
            raise FootprintError(f"{where}: is a line of zero length; check its vertices")
        # Round joins to the curve tolerance, outside the true buffer (see threelines.curves).
        return outer_buffer(lines, width / 2.0, cap_style="flat", join_style="round")
    project["kind"] = project["kind"] or "point"
    points = shapely.union_all(parts)
    # A point is a site; with a radius it is the disc the site occupies.
    return disc(points, project["radius"]) if project["radius"] else points
