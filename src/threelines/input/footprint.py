"""Read project footprints and their attributes, and put them in the working CRS.

A footprint file holds one project per feature. Attributes come from columns
named after :data:`~threelines.input.attributes.ATTRIBUTES` (any case) and can
be overridden for all features at once (the CLI's ``--industry``, ``--kind``,
...). A problem with one feature (a bad code, an empty geometry) is reported
for that feature and the others go on; a problem with the file (unreadable, no
CRS) stops the read.

One footprint's way: its source (:mod:`threelines.input.sources`) gives it as
drawn, with its file's other features; :func:`~threelines.input.drawn.drawn_projects`
judges them over the whole file (its CRS: :mod:`threelines.input.footprint_crs`);
:meth:`~threelines.input.drawn.DrawnProjects.place` places them in the working
CRS, each as its footprint (:mod:`threelines.input.placing`), into
:class:`~threelines.input.projects.Projects`, which the engine screens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import CRS

from threelines.errors import FootprintError
from threelines.input.attributes import attribute_columns, column_cells
from threelines.input.drawn import DrawnProjects, drawn_projects
from threelines.input.geopackage import PlainGeoPackage, count_features
from threelines.input.projects import Projects
from threelines.input.sources import Problem, open_sources
from threelines.input.vector_files import file_and_layer, open_vector_file


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
        Attribute values applied to every feature, by names of :data:`~threelines.input.attributes.ATTRIBUTES`.

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
    part: int | Callable[[int], int] | None = None,
) -> Iterator[Projects]:
    """Read a footprint input as consecutive pieces of at most ``piece`` features, to bound memory.

    A plain vector file (Shapefile, GeoPackage, GeoJSON, FlatGeobuf, ...)
    with more features than ``piece`` is read a piece at a time; each piece
    gives the projects :func:`read_projects` would give for those features
    (the same ids, the CRS decided once from the whole file's extent). Any
    other input is read whole, as one piece.

    With ``order``, what is read at once (a file of one source, or a piece)
    is first judged as a whole (:func:`~threelines.input.drawn.drawn_projects`:
    its CRS, ids and attribute columns), then its features are placed in the
    working CRS and yielded ``part`` at a time, in the order ``order`` gives: the first
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
    part : int or callable, optional
        Features placed and yielded at a time, with ``order`` (the last part
        of a piece holds what is left of it); or, given how many features of
        the input are still to be placed, how many to place next (a piece
        that is not the input's last then ends with a larger part rather
        than with less than a part).

    Yields
    ------
    Projects

    Raises
    ------
    FootprintError
        As :func:`read_projects`, when the file or a piece cannot be read.
    """
    options = {"crs": crs, "overrides": overrides, "line_widths": line_widths}

    def placed(drawn: DrawnProjects | Projects, after: int = 0) -> Iterator[Projects]:
        """The projects of what was read at once, placed a part at a time (``after``: features read later)."""
        if isinstance(drawn, Projects):  # read from several sources, or with problems: already placed
            yield drawn
        elif order is None:
            yield drawn.place()
        else:
            positions = np.asarray(order(drawn.boxes), dtype=np.intp)
            sized = callable(part)  # by what is left: no sliver of a part before the next piece
            size = part if sized else lambda left: part or len(positions)
            start = 0
            while start < len(positions):
                left = len(positions) - start + after
                step = size(left)
                rest = len(positions) - start - step
                if sized and after and 0 < rest < size(left - step):
                    step += rest
                projects = drawn.place(positions[start : start + step])
                projects.ordered = True
                yield projects
                start += step

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
        after = max(whole.features - start - piece, 0)
        if isinstance(found, PlainGeoPackage):
            yield from placed(drawn_projects(found.geometries, found.crs, found.cells, working_crs, **options), after)
        else:
            yield from placed(_drawn_frame(found, working_crs, **options), after)


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
        One feature per project; attribute columns named as :data:`~threelines.input.attributes.ATTRIBUTES`.
    working_crs : pyproj.CRS
    **options
        As for :func:`projects_from_arrays`.

    Returns
    -------
    Projects
    """
    return _drawn_frame(frame, working_crs, **options).place()


def _drawn_frame(frame, working_crs: CRS, **options) -> DrawnProjects:
    """A GeoDataFrame of footprints judged over the whole frame (see :func:`~threelines.input.drawn.drawn_projects`)."""
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
        As for :func:`~threelines.input.drawn.drawn_projects`.

    Returns
    -------
    Projects
    """
    return drawn_projects(drawn, drawn_crs, cells, working_crs, **options).place()
