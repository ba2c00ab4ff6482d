"""A file's footprints as drawn, judged over the whole file, then placed in the working CRS.

:func:`drawn_projects` decides once for all of a file's features what does not
depend on which of them are placed together: the file's CRS
(:mod:`threelines.input.footprint_crs`), the features it does not fit, broken
coordinates, flat polygons, the project ids and the attribute columns.
:meth:`DrawnProjects.place` then places any of the features (all at once, or a
part at a time along a curve) in the working CRS, each as its footprint
(:mod:`threelines.input.placing`), into :class:`~threelines.input.projects.Projects`.
Reading the input (:mod:`threelines.input.footprint`) comes before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from shapely import GeometryType

from threelines.arrays import sorted_distinct
from threelines.densify import densify
from threelines.errors import FootprintError, IndustryCodeError, feature_at
from threelines.input.attributes import ATTRIBUTES, check_attributes, checked_columns, plain_values
from threelines.input.crs import to_crs
from threelines.input.footprint_crs import footprint_crs
from threelines.input.placing import footprint_areas, one_footprint, plain_lines, plain_polygons, plane_areas
from threelines.input.projects import Projects
from threelines.input.sources import Problem


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
    :func:`~threelines.input.footprint_crs.footprint_crs`), the features it
    does not fit, broken coordinates, flat polygons, the project ids and the
    attribute columns.
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
        As for :func:`~threelines.input.footprint.read_projects`.
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
    drawn, file_crs, misplaced = footprint_crs(drawn, file_crs, crs, label, bounds, announce, skip=broken)
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
            raw_geoms = _without_z(to_crs(native, file_crs, self.working_crs))
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
        cells = {name: _taken(column, at) for name, column in self.cells.items()}
        checked, columns = checked_columns(ids, cells, self.overrides)
        usable = placed & ~flat
        usable[[j for j, i in enumerate(at.tolist()) if i in self.broken]] = False
        simple, ready = plain_polygons(raw_geoms, usable)
        lines = plain_lines(raw_geoms, usable & ~simple, checked)
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
                    geoms.append(one_footprint(geom, project, label, self.line_widths))
            except (FootprintError, IndustryCodeError) as exc:
                problems.append(Problem(str(exc), self.source, self.layer, first + i))
                continue
            attrs.append(project)
            keys.append((self.source, self.layer, first + i))
            kept.append(j)
        geometry = np.array(geoms, dtype=object) if geoms else np.empty(0, dtype=object)
        area = footprint_areas(geometry, attrs)
        plane = plane_areas(native, file_crs, self.working_crs, geometry, simple, np.array(kept, dtype=int))
        return Projects(
            source=label, attrs=attrs, geometry=geometry, area_m2=area, problems=problems, crs=file_crs,
            plane_area_m2=plane, keys=keys, columns=_kept_columns(columns, checked, kept, attrs),
        )  # fmt: skip

    def _values(self, i: int) -> dict[str, Any]:
        """Every attribute of one feature, as read (its cells made plain values once per column)."""
        if not self._plain:
            self._plain.update((name, plain_values(column)) for name, column in self.cells.items())
        return {name: self._plain[name][i] if name in self._plain else None for name in ATTRIBUTES}


def _without_z(geoms: np.ndarray) -> np.ndarray:
    """The geometries in 2D: those with a z or m lose it; the others (most: reprojected, they come out 2D) stay."""
    extra = shapely.has_z(geoms) | shapely.has_m(geoms)
    if not extra.any():
        return geoms
    out = geoms.copy()
    out[extra] = shapely.force_2d(geoms[extra])
    return out


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
    """The features (in order, each once) that own the coordinates ``which`` marks."""
    return sorted_distinct(owner[which]).tolist()


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


def _project_ids(given: list[Any], stem: str, first: int, total: int) -> list[str]:
    """Each feature's project id: its own, as text, or by default ``stem-N`` (``stem`` for a file of one feature)."""
    return [
        (stem if total == 1 else f"{stem}-{first + i + 1}") if value is None else str(value)
        for i, value in enumerate(given)
    ]


def _kept_columns(
    columns: dict[str, list[Any]], checked: list[dict[str, Any] | None], kept: list[int], attrs: list[dict[str, Any]]
) -> dict[str, np.ndarray]:
    """The kept projects' attributes as columns (see :attr:`Projects.columns`), from the columns checked whole.

    The rows checked alone take their values from their attributes, and so do
    the kinds and widths, which placing a footprint may have filled in.
    """
    out = {name: np.fromiter(columns[name], dtype=object, count=len(checked)) for name in ATTRIBUTES}
    if len(kept) < len(checked):  # some rows were refused
        rows = np.array(kept, dtype=int)
        out = {name: column[rows] for name, column in out.items()}
    for name in ("kind", "width"):
        out[name] = np.fromiter((project[name] for project in attrs), dtype=object, count=len(attrs))
    for at in [at for at, j in enumerate(kept) if checked[j] is None]:  # rare: a row that check_columns doubted
        for name in ATTRIBUTES:
            out[name][at] = attrs[at][name]
    return out
