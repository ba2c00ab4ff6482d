"""Read project footprints and their attributes, and put them in the working CRS.

A footprint file holds one project per feature. Attributes come from columns
named after :data:`ATTRIBUTES` (any case) and can be overridden for all
features at once (the CLI's ``--industry``, ``--kind``, ...). A problem with
one feature (a bad code, an empty geometry) is reported for that feature and
the others go on; a problem with the file (unreadable, no CRS) stops the read.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from shapely import GeometryType

from threelines.engine.measure import densify, disc, disc_area, disc_centres, outer_buffer
from threelines.errors import CRSError, FootprintError, IndustryCodeError, feature_at
from threelines.input.attributes import (
    ATTRIBUTES,
    attribute_columns,
    check_attributes,
    check_columns,
    column_cells,
    plain_values,
)
from threelines.input.crs import WEB_OFFSETS, diagnose, gk_zone_crs, inside_china, parse_crs, to_crs
from threelines.input.geopackage import PlainGeoPackage, count_features
from threelines.input.sources import Problem, file_and_layer, open_sources, open_vector_file

log = logging.getLogger(__name__)


@dataclass
class Projects:
    """Projects ready to screen: attributes and footprints in the working CRS.

    Attributes
    ----------
    source : str
        The file they were read from.
    attrs : list of dict
        Per project, every name of :data:`ATTRIBUTES` (None where not given).
    geometry : numpy.ndarray of shapely geometries
        Footprints in the working CRS; lines already buffered by their width.
    area_m2 : numpy.ndarray
        Footprint areas in square metres (0 for points), on the ellipsoid (the
        equal-area working CRS); a point site with a radius: exactly pi r^2.
    problems : list of str
        One message per feature or file that could not be used (a
        :class:`~threelines.input.sources.Problem`, which says where it came from).
    crs : pyproj.CRS or None
        The CRS the footprints came in (WGS84 for web-map offsets), so that
        evidence can be written back in it; None when the sources differ.
    keys : list of tuple
        Per project, where it came from: ``(file, layer, feature)``, the file
        as given (a folder's or zip's member), its layer (None: its only one)
        and the feature's 0-based position in it. A batch keys its records by it.
    plane_area_m2 : numpy.ndarray or None
        Per project, the footprint's area in the plane of the projected CRS it
        came in (as the site drawing states it); NaN for longitude/latitude input.
    ordered : bool
        True when they already come in the order to screen them (a part of a
        file placed along a curve, see :func:`read_projects_in_pieces`).
    """

    source: str
    attrs: list[dict[str, Any]]
    geometry: np.ndarray
    area_m2: np.ndarray
    problems: list[str] = field(default_factory=list)
    crs: CRS | None = None
    keys: list[tuple[str, str | None, int]] = field(default_factory=list)
    plane_area_m2: np.ndarray | None = None
    ordered: bool = False
    _wkb: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.attrs)

    def wkb(self) -> np.ndarray:
        """Each footprint's WKB (as ``shapely.to_wkb`` writes it), written once: a batch hashes it, then pickles it."""
        if self._wkb is None:
            self._wkb = shapely.to_wkb(self.geometry) if len(self.geometry) else np.empty(0, dtype=object)
        return self._wkb

    def __getstate__(self) -> dict[str, Any]:
        """What is pickled (for a worker process): the footprints as WKB, written in one call, not one per footprint."""
        # Footprints without an SRID (all of a file's) have the same WKB with or without it: the one written already.
        srid = (shapely.get_srid(self.geometry) > 0).any()  # a missing footprint's is -1
        wkb = shapely.to_wkb(self.geometry, include_srid=True) if srid or self._wkb is None else self._wkb
        return {**self.__dict__, "geometry": wkb, "_wkb": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, geometry=shapely.from_wkb(state["geometry"]))

    def take(self, positions) -> Projects:
        """The projects at some positions (for screening a large input in chunks)."""
        positions = list(positions)
        taken = Projects(
            source=self.source,
            attrs=[self.attrs[i] for i in positions],
            geometry=self.geometry[positions],
            area_m2=self.area_m2[positions],
            crs=self.crs,
            keys=[self.keys[i] for i in positions] if self.keys else [],
            plane_area_m2=None if self.plane_area_m2 is None else self.plane_area_m2[positions],
        )
        if self._wkb is not None:
            taken._wkb = self._wkb[positions]
        return taken


def read_projects(
    path: str | Path,
    working_crs: CRS,
    *,
    crs: object = None,
    encoding: str | None = None,
    overrides: dict[str, Any] | None = None,
    line_widths: dict[str, float] | None = None,
) -> Projects:
    """Read a footprint file into projects in the working CRS.

    Parameters
    ----------
    path : str or Path
        Any vector file GDAL reads (``file.gpkg:layer`` picks a layer), a
        corner-coordinate table, a zip or folder of them, or ``-`` for
        GeoJSON on standard input (see :mod:`threelines.input.sources`).
    working_crs : pyproj.CRS
        The layer set's equal-area working CRS.
    crs : optional
        The file's CRS, required when the file has none (EPSG code, WKT, PROJ).
    encoding : str, optional
        Attribute encoding, e.g. ``GBK`` for a Chinese shapefile without .cpg.
    overrides : dict, optional
        Attribute values applied to every feature, by names of :data:`ATTRIBUTES`.

    Returns
    -------
    Projects
        The usable projects, with a message in ``problems`` for each feature
        that could not be used.

    Raises
    ------
    FootprintError
        If the file cannot be read, has no features or no CRS.
    """
    read = _read_whole(path, working_crs, crs=crs, encoding=encoding, overrides=overrides, line_widths=line_widths)
    return read.place() if isinstance(read, DrawnProjects) else read


def _read_whole(path, working_crs: CRS, *, crs, encoding, overrides, line_widths) -> Projects | DrawnProjects:
    """:func:`read_projects`, but a file of one source without problems is only judged, still to be placed."""
    sources, problems = open_sources(path, encoding, plain=True)
    parts = []
    for source in sources:  # a zip or folder holds several; one that fails is reported, the rest go on
        problems += [Problem.at(m, source.file, source.layer) for m in source.problems]
        if source.frame is not None and source.frame.empty and source.problems:
            continue  # a table whose every parcel was refused: its messages say why
        options = {
            "label": source.label, "stem": source.stem, "crs": crs, "overrides": overrides,
            "line_widths": line_widths, "source": source.file, "layer": source.layer,
        }  # fmt: skip
        try:
            if source.plain is not None:
                found = source.plain
                drawn = drawn_projects(found.geometries, found.crs, found.cells, working_crs, **options)
            else:
                drawn = _drawn_frame(source.frame, working_crs, **options)
        except FootprintError as exc:
            if len(sources) == 1 and not problems:
                raise
            problems.append(Problem(str(exc), source.file, source.layer))
            continue
        if len(sources) == 1 and not problems:
            return drawn
        parts.append(drawn.place())
    geometry = np.concatenate([p.geometry for p in parts]) if parts else np.empty(0, dtype=object)
    return Projects(
        source=str(path),
        attrs=[a for p in parts for a in p.attrs],
        geometry=geometry,
        area_m2=np.concatenate([p.area_m2 for p in parts]) if parts else np.empty(0),
        problems=problems + [m for p in parts for m in p.problems],
        crs=parts[0].crs if parts and all(p.crs == parts[0].crs for p in parts) else None,
        keys=[k for p in parts for k in p.keys],
        plane_area_m2=np.concatenate([_plane_or_nan(p) for p in parts]) if parts else np.empty(0),
    )


def _plane_or_nan(projects: Projects) -> np.ndarray:
    """The projects' plane areas, NaN where there are none."""
    if projects.plane_area_m2 is None:
        return np.full(len(projects), np.nan)
    return projects.plane_area_m2


def read_projects_in_pieces(
    path: str | Path,
    working_crs: CRS,
    *,
    piece: int,
    crs: object = None,
    encoding: str | None = None,
    overrides: dict[str, Any] | None = None,
    line_widths: dict[str, float] | None = None,
    order: Callable[[np.ndarray], np.ndarray] | None = None,
    part: int | None = None,
) -> Iterator[Projects]:
    """Read a footprint input as consecutive pieces of at most ``piece`` features, to bound memory.

    A plain vector file (Shapefile, GeoPackage, GeoJSON, FlatGeobuf, ...)
    with more features than ``piece`` is read a piece at a time; each piece
    gives the projects :func:`read_projects` would give for those features
    (the same ids, the CRS decided once from the whole file's extent). Any
    other input is read whole, as one piece.

    With ``order``, what is read at once (a file of one source, or a piece)
    is first judged as a whole (:func:`drawn_projects`: its CRS, ids and
    attribute columns), then its features are placed in the working CRS and
    yielded ``part`` at a time, in the order ``order`` gives: the first
    projects are ready to screen while the others are still to be placed.
    Each feature gives the same project or problem either way.

    Parameters
    ----------
    path, working_crs, crs, encoding, overrides, line_widths
        As for :func:`read_projects`.
    piece : int
        Features read at a time.
    order : callable, optional
        Given the features' boxes as drawn (rows of minx, miny, maxx, maxy;
        NaN for a feature without coordinates), their positions in the
        order to yield them.
    part : int, optional
        Features placed and yielded at a time, with ``order``.

    Yields
    ------
    Projects

    Raises
    ------
    FootprintError
        As :func:`read_projects`, when the file or a piece cannot be read.
    """
    options = {"crs": crs, "overrides": overrides, "line_widths": line_widths}

    def placed(drawn: DrawnProjects | Projects) -> Iterator[Projects]:
        if isinstance(drawn, Projects):  # read from several sources, or with problems: already placed
            yield drawn
        elif order is None:
            yield drawn.place()
        else:
            positions = np.asarray(order(drawn.boxes), dtype=np.intp)
            step = part or len(positions)
            for start in range(0, len(positions), step):
                projects = drawn.place(positions[start : start + step])
                projects.ordered = True
                yield projects

    plain = features_known(path)
    whole = None if plain is not None and plain <= piece else open_vector_file(path, encoding)
    if whole is None or whole.features <= piece:  # a plain GeoPackage or any other input: read whole
        yield from placed(_read_whole(path, working_crs, encoding=encoding, **options))
        return
    for start, found in whole.pieces(piece):
        options.update(
            label=whole.label, stem=whole.stem, first=start, total=whole.features, bounds=_finite(whole.bounds),
            announce=start == 0, source=whole.text, layer=whole.layer,
        )  # fmt: skip
        if isinstance(found, PlainGeoPackage):
            yield from placed(drawn_projects(found.geometries, found.crs, found.cells, working_crs, **options))
        else:
            yield from placed(_drawn_frame(found, working_crs, **options))


def features_known(path: str | Path) -> int | None:
    """How many features an input holds, where that is known without reading it (a plain GeoPackage); else None."""
    return count_features(*file_and_layer(str(path)))


def _finite(bounds):
    """An extent to decide the CRS from, or None to use each piece's own."""
    return bounds if bounds is not None and bool(np.isfinite(bounds).all()) else None


def projects_from_frame(frame, working_crs: CRS, **options) -> Projects:
    """Turn a GeoDataFrame of footprints into projects in the working CRS.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        One feature per project; attribute columns named as :data:`ATTRIBUTES`.
    working_crs : pyproj.CRS
    **options
        As for :func:`projects_from_arrays`.

    Returns
    -------
    Projects
    """
    return _drawn_frame(frame, working_crs, **options).place()


def _drawn_frame(frame, working_crs: CRS, **options) -> DrawnProjects:
    """A GeoDataFrame of footprints judged over the whole frame (see :func:`drawn_projects`)."""
    if len(frame) == 0:  # refused, as any input without features
        return drawn_projects(np.empty(0, dtype=object), None, {}, working_crs, **options)
    # The geometry column taken once: each lookup of frame.geometry builds a GeoSeries.
    drawn = np.asarray(frame.geometry.values, dtype=object)
    # Per attribute, its cells read from the frame once (numbers stay an array, checked over it).
    cells = {name: column_cells(frame[column]) for name, column in attribute_columns(frame).items()}
    return drawn_projects(drawn, frame.crs, cells, working_crs, **options)


def projects_from_arrays(
    drawn: np.ndarray, drawn_crs, cells: dict[str, list[Any]], working_crs: CRS, **options
) -> Projects:
    """Turn footprints and their attributes into projects in the working CRS.

    Parameters
    ----------
    drawn, drawn_crs, cells, working_crs, **options
        As for :func:`drawn_projects`.

    Returns
    -------
    Projects
    """
    return drawn_projects(drawn, drawn_crs, cells, working_crs, **options).place()


def drawn_projects(
    drawn: np.ndarray,
    drawn_crs,
    cells: dict[str, list[Any]],
    working_crs: CRS,
    *,
    label: str = "<frame>",
    stem: str = "project",
    crs: object = None,
    overrides: dict[str, Any] | None = None,
    line_widths: dict[str, float] | None = None,
    first: int = 0,
    total: int | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    announce: bool = True,
    source: str | None = None,
    layer: str | None = None,
) -> DrawnProjects:
    """Judge footprints and their attributes over the whole file: what is decided once for all of them.

    That is the file's CRS (from the features' coordinates, see
    :func:`_footprint_crs`), the features it does not fit, broken
    coordinates, flat polygons, the project ids and the attribute columns.
    :meth:`DrawnProjects.place` then makes projects in the working CRS of
    any of the features, all at once or a part at a time.

    Parameters
    ----------
    drawn : numpy.ndarray of shapely geometries
        One footprint per project (None: no geometry), as drawn.
    drawn_crs : pyproj.CRS or None
        The CRS the input declares (None: it declares none).
    cells : dict
        Per attribute of :data:`ATTRIBUTES` given, one plain value per
        footprint, None where missing (see :func:`~threelines.input.attributes.plain_column`).
    working_crs : pyproj.CRS
    label : str
        How to name the source in messages.
    stem : str
        Base of the default project ids (``stem`` or ``stem-N``).
    crs, overrides
        As for :func:`read_projects`.
    first, total : int
        For a piece of a larger file: the position of its first feature in
        the file and how many the file holds (default ids count from there).
    bounds : tuple of float, optional
        For a piece: the whole file's extent, which decides its CRS (so every
        piece gets the same answer).
    announce : bool
        Log what was decided about the CRS (once per file: not again for later pieces).
    source, layer : str, optional
        The file (default: ``label``) and layer the features come from, for the projects' ``keys``.

    Returns
    -------
    DrawnProjects

    Raises
    ------
    FootprintError
        For a file without features, or whose CRS is wrong for most of them.
    """
    if len(drawn) == 0:
        raise FootprintError(f"{label}: has no features; a footprint file needs at least one polygon, line or point")
    # Per feature, what keeps it from being screened: broken coordinates, then a CRS it does not fit
    # (when most of the file fits; otherwise the file as a whole is refused).
    broken = _coordinate_problems(drawn)
    file_crs = CRS.from_user_input(drawn_crs) if drawn_crs is not None else None
    drawn, file_crs, misplaced = _footprint_crs(drawn, file_crs, crs, label, bounds, announce, skip=broken)
    broken.update(misplaced)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    count = len(drawn)
    given = [overrides["id"]] * count if "id" in overrides else plain_values(cells.get("id", [None] * count))
    ids = _project_ids(given, stem, first, total or count)
    return DrawnProjects(
        drawn=drawn, crs=file_crs, working_crs=working_crs, broken=broken, flat=_flat_polygons(drawn), ids=ids,
        cells=cells, overrides=overrides, label=label, source=label if source is None else source, layer=layer,
        first=first, line_widths=line_widths or {},
    )  # fmt: skip


@dataclass
class DrawnProjects:
    """A file's footprints as drawn, judged over the whole file (:func:`drawn_projects`), to be placed.

    Attributes
    ----------
    drawn : numpy.ndarray of shapely geometries
        The footprints in ``crs`` (web-map offsets already removed).
    crs : pyproj.CRS
        The CRS decided for the file.
    working_crs : pyproj.CRS
        The CRS the projects are placed in.
    broken : dict
        By position, why a feature cannot be placed (broken coordinates, a CRS it does not fit).
    flat : numpy.ndarray of bool
        Polygons without area.
    ids : list of str
        Each feature's project id (given, or made from the file's name).
    cells : dict
        The attribute columns (see :func:`drawn_projects`).
    overrides : dict
        Attributes given for every project (on the command line), over the file's.
    label, source, layer : str, str, str or None
        How messages name the file; the file and layer that records are keyed by.
    first : int
        The position in the file of the first feature (a piece's start).
    line_widths : dict
        The manifest's widths of linear projects by industry code prefix, for lines without one.
    """

    drawn: np.ndarray
    crs: CRS
    working_crs: CRS
    broken: dict[int, str]
    flat: np.ndarray
    ids: list[str]
    cells: dict[str, Any]
    overrides: dict[str, Any]
    label: str
    source: str
    layer: str | None
    first: int
    line_widths: dict[str, float]
    _plain: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.drawn)

    @property
    def boxes(self) -> np.ndarray:
        """Each footprint's box as drawn (rows of minx, miny, maxx, maxy in ``crs``; NaN for none).

        A feature that cannot be placed (broken coordinates, a CRS it does
        not fit) has none either: its coordinates would stretch any grid laid
        over the boxes.
        """
        boxes = shapely.bounds(self.drawn)
        boxes[list(self.broken)] = np.nan
        return boxes

    def place(self, positions: np.ndarray | None = None) -> Projects:
        """The projects of some features (their positions; None: all), in that order, in the working CRS.

        A feature gives the same project (or problem) whichever others are
        placed with it.
        """
        at = np.arange(len(self.drawn)) if positions is None else np.asarray(positions, dtype=np.intp)
        label, first, file_crs = self.label, self.first, self.crs
        drawn = self.drawn[at]
        # Edges straight in the file's CRS, as GIS draws them, stay straight there.
        native = densify(drawn, file_crs)
        with np.errstate(invalid="ignore"):
            raw_geoms = shapely.force_2d(to_crs(native, file_crs, self.working_crs))
        # Coordinates that do not fit the declared CRS (wrong zone, metres read as degrees)
        # come out of the transformation as inf.
        placed = (
            np.isfinite(shapely.bounds(raw_geoms)).all(axis=1)
            | shapely.is_missing(raw_geoms)
            | shapely.is_empty(raw_geoms)
        )
        flat = self.flat[at]
        # Attributes checked over whole columns; a row they doubt is checked alone, which says what is wrong.
        ids = [self.ids[i] for i in at.tolist()]
        checked = check_columns(ids, {name: _taken(column, at) for name, column in self.cells.items()}, self.overrides)
        usable = placed & ~flat
        usable[[j for j, i in enumerate(at.tolist()) if i in self.broken]] = False
        simple, ready = _plain_polygons(raw_geoms, usable)
        lines = _plain_lines(raw_geoms, usable & ~simple, checked)
        attrs, geoms, problems, keys, kept = [], [], [], [], []
        for j, (i, pid, geom) in enumerate(zip(at.tolist(), ids, raw_geoms, strict=True)):
            try:
                if i in self.broken:
                    raise FootprintError(f"{label}: project {pid!r}, {feature_at(first + i)}: {self.broken[i]}")
                if flat[j]:
                    raise FootprintError(
                        f"{label}: project {pid!r}: is a polygon with no area (its vertices lie on one line); "
                        "check the drawing"
                    )
                if not placed[j]:
                    raise FootprintError(
                        f"{label}: project {pid!r}: its coordinates cannot be placed in {file_crs.name} "
                        f"(EPSG:{file_crs.to_epsg()}); check the CRS (--crs), e.g. a prefixed Gauss-Kruger easting "
                        "needs 4513-4533, an unprefixed one 4534-4554"
                    )
                project = checked[j]
                if project is None:
                    project = check_attributes({**self._values(i), **self.overrides, "id": pid}, label)
                if simple[j]:  # most footprints: already checked, over the whole array
                    project["kind"] = project["kind"] or "area"
                    geoms.append(ready[j])
                elif j in lines:  # a plain line with its width: buffered over the array too
                    project["kind"] = project["kind"] or "linear"
                    geoms.append(lines[j])
                else:
                    geoms.append(_footprint(geom, project, label, self.line_widths))
            except (FootprintError, IndustryCodeError) as exc:
                problems.append(Problem(str(exc), self.source, self.layer, first + i))
                continue
            attrs.append(project)
            keys.append((self.source, self.layer, first + i))
            kept.append(j)
        geometry = np.array(geoms, dtype=object) if geoms else np.empty(0, dtype=object)
        area = _areas(geometry, attrs)
        plane = _plane_areas(native, file_crs, self.working_crs, geometry, simple, np.array(kept, dtype=int))
        return Projects(
            source=label, attrs=attrs, geometry=geometry, area_m2=area, problems=problems, crs=file_crs,
            plane_area_m2=plane, keys=keys,
        )  # fmt: skip

    def _values(self, i: int) -> dict[str, Any]:
        """Every attribute of one feature, as read (its cells made plain values once per column)."""
        if not self._plain:
            self._plain.update((name, plain_values(column)) for name, column in self.cells.items())
        return {name: self._plain[name][i] if name in self._plain else None for name in ATTRIBUTES}


def _taken(column, positions: np.ndarray):
    """Some cells of an attribute column (a list or a numpy array), in the order of ``positions``."""
    if isinstance(column, np.ndarray):
        return column[positions]
    return [column[i] for i in positions.tolist()]


#: Coordinates beyond this are no place on Earth in any CRS (prefixed Gauss-Kruger eastings stay under 4.6e7 m).
MAX_COORDINATE = 1e8

#: A polygon thinner on average (2 x area / perimeter) than this many units of float precision at its
#: coordinates has no area: its vertices lie on a line, up to rounding. (1e4 x 2.2e-16 x 116 degrees is
#: 3e-10 degree, 30 um; at a prefixed Gauss-Kruger easting 0.1 mm: far thinner than any real footprint.)
FLAT_ULPS = 1e4


def _coordinate_problems(geoms: np.ndarray) -> dict[int, str]:
    """Features with a NaN, infinite or impossibly large coordinate, and what is wrong, over the whole array."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    if coords.size == 0:
        return {}
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(coords).max(axis=1)
    out: dict[int, str] = {}
    for i in _owners(owner, magnitude > MAX_COORDINATE):
        worst = float(magnitude[owner == i].max())
        out[i] = f"has a coordinate of {worst:g}, too large for a place on Earth in any CRS; check the drawing"
    for i in _owners(owner, np.isnan(magnitude) | np.isinf(magnitude)):
        out[i] = "has a NaN or infinite coordinate (a vertex without a number); fix or redraw that vertex"
    return out


def _owners(owner: np.ndarray, which: np.ndarray) -> list[int]:
    """The features (in order, each once) that own the coordinates ``which`` marks.

    Counted rather than found by ``np.unique``, whose first call imports ``numpy.ma``: a twentieth of a
    second of every batch's reading, for a file that almost never has such a coordinate.
    """
    return np.flatnonzero(np.bincount(owner[which])).tolist() if which.any() else []


def _flat_polygons(geoms: np.ndarray) -> np.ndarray:
    """Which features are polygons without area, judged in the file's own coordinates.

    Vertices on one line keep no area in the file's CRS (but for rounding),
    while reprojection would give them a few square centimetres in the
    working CRS. A bow-tie's signed halves may cancel too, so a candidate
    is flat only if its convex hull has no area either.
    """
    polygonal = np.isin(shapely.get_type_id(geoms), (GeometryType.POLYGON, GeometryType.MULTIPOLYGON))
    flat = np.zeros(len(geoms), dtype=bool)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        shapes = geoms[polygonal]
        flat[polygonal] = ~shapely.is_empty(shapes) & _thin(shapes)
        flat[flat] = _thin(shapely.convex_hull(geoms[flat]))
    return flat


def _thin(geoms: np.ndarray) -> np.ndarray:
    """Average thickness within float rounding of the coordinates' magnitude."""
    magnitude = np.abs(shapely.bounds(geoms)).max(axis=1)
    return 2 * shapely.area(geoms) <= FLAT_ULPS * np.finfo(float).eps * magnitude * shapely.length(geoms)


def _areas(geometry: np.ndarray, attrs: list[dict[str, Any]]) -> np.ndarray:
    """Footprint areas (m2) in the working CRS; a point site's disc counts as the exact circle, pi r^2."""
    area = shapely.area(geometry) if len(geometry) else np.empty(0)
    radii = np.array([a.get("radius") or 0.0 for a in attrs], dtype=float)
    if (radii > 0).any():
        centres = disc_centres(geometry, radii)
        exact = np.flatnonzero(centres != None)  # noqa: E711
        area[exact] = [disc_area(radii[p]) for p in exact.tolist()]
    return area


def _plane_areas(native, file_crs: CRS, working_crs: CRS, geometry, simple, kept) -> np.ndarray:
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


def _plain_polygons(geoms: np.ndarray, placed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which footprints are plain valid polygons with an area, and their footprints, over the whole array.

    These need nothing of :func:`_footprint` but what it would do to them:
    a one-part multipolygon becomes its polygon. The others (lines, points,
    collections, invalid or empty geometries) go through :func:`_footprint`.
    """
    kinds = shapely.get_type_id(geoms)
    parts = shapely.get_num_geometries(geoms)
    simple = placed & ((kinds == GeometryType.POLYGON) | ((kinds == GeometryType.MULTIPOLYGON) & (parts >= 1)))
    simple[simple] = shapely.is_valid(geoms[simple]) & (shapely.area(geoms[simple]) > 0)
    ready = geoms.copy()
    single = simple & (kinds == GeometryType.MULTIPOLYGON) & (parts == 1)
    ready[single] = shapely.get_geometry(geoms[single], 0)
    return simple, ready


def _plain_lines(geoms: np.ndarray, usable: np.ndarray, checked: list[dict[str, Any] | None]) -> dict[int, Any]:
    """The footprints of plain lines with a width, by position: buffered over the array, one call per width.

    These are single non-empty linestrings whose attributes passed and give a
    width: :func:`_footprint` would union each (noding it) and buffer it by
    half its width, as here. The others (no width, zero length, several
    parts) go through :func:`_footprint`, which says what is wrong.
    """
    kinds = shapely.get_type_id(geoms)
    candidates = usable & (kinds == GeometryType.LINESTRING) & ~shapely.is_empty(geoms)
    positions = np.flatnonzero(candidates)
    positions = np.array([i for i in positions.tolist() if checked[i] is not None and checked[i]["width"]], dtype=int)
    if not len(positions):
        return {}
    lines = shapely.union_all(geoms[positions][:, np.newaxis], axis=1)  # each line alone, as _footprint does
    keep = shapely.length(lines) > 0
    positions, lines = positions[keep], lines[keep]
    widths = np.array([checked[i]["width"] for i in positions.tolist()], dtype=float)
    out = np.empty(len(positions), dtype=object)
    for width in dict.fromkeys(widths.tolist()):  # (not np.unique: see _owners)
        same = widths == width
        out[same] = outer_buffer(lines[same], width / 2.0, cap_style="flat", join_style="round")
    return dict(zip(positions.tolist(), out.tolist(), strict=True))


def _project_ids(given: list[Any], stem: str, first: int, total: int) -> list[str]:
    """Each feature's project id: its own, as text, or by default ``stem-N`` (``stem`` for a file of one feature)."""
    return [
        (stem if total == 1 else f"{stem}-{first + i + 1}") if value is None else str(value)
        for i, value in enumerate(given)
    ]


def _footprint_crs(geoms: np.ndarray, file_crs: CRS | None, given, label: str, bounds=None, announce=True, skip=()):
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


def _footprint(geom, project: dict[str, Any], label: str, line_widths: dict[str, float]):
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
        # Round joins to the curve tolerance, outside the true buffer (see threelines.engine.measure).
        return outer_buffer(lines, width / 2.0, cap_style="flat", join_style="round")
    project["kind"] = project["kind"] or "point"
    points = shapely.union_all(parts)
    # A point is a site; with a radius it is the disc the site occupies.
    return disc(points, project["radius"]) if project["radius"] else points
