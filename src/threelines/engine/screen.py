"""The screening flow, one step per module: compile -> pairs -> decisions -> triggers -> verdicts.

1. :mod:`~threelines.engine.compile`: the rules' kind, industry and ``when`` filters as columns over the projects;
2. :mod:`~threelines.engine.pairs`: the footprints measured against the layers, as (project, feature) pairs;
3. :mod:`~threelines.engine.decisions`: per rule, the pairs and projects that fire or stay undecided, as rows;
4. :mod:`~threelines.engine.triggers`: the fired rows as triggers (texts: :mod:`~threelines.engine.trigger_texts`);
5. :mod:`~threelines.engine.verdicts`: the rows grouped into one verdict per project.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from threelines import sample
from threelines.collector import collector_held
from threelines.engine.compile import compile_rules
from threelines.engine.decisions import decide_rules
from threelines.engine.pairs import measure_layers
from threelines.engine.triggers import build_triggers
from threelines.engine.verdict import Verdict
from threelines.engine.verdicts import group_verdicts
from threelines.input.footprint import projects_from_frame, read_projects
from threelines.input.projects import Projects
from threelines.layers.manifest import load_manifest
from threelines.layers.read import LayerData
from threelines.layers.spec import Manifest
from threelines.rules import RuleSet, load_rules

if TYPE_CHECKING:
    from geopandas import GeoDataFrame


@dataclass
class Screening:
    """The verdicts for a footprint file, and the features that could not be screened.

    ``footprints`` holds each verdict's footprint in the working CRS (lines
    already buffered) and ``crs`` the CRS the file came in, for reports that
    draw and write the evidence.
    """

    verdicts: list[Verdict]
    problems: list[str] = field(default_factory=list)
    footprints: list[Any] = field(default_factory=list)
    crs: Any = None


def screen(
    footprint: str | Path | GeoDataFrame,
    layers: str | Path | Manifest | None = None,
    rules: str | Path | RuleSet | None = None,
    *,
    crs: object = None,
    encoding: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Screening:
    """Screen the projects of a footprint file against the three lines and the list.

    Parameters
    ----------
    footprint : str, Path or geopandas.GeoDataFrame
        A vector file, corner table, zip or folder with one project per
        feature (``file.gpkg:layer`` picks a layer; ``-`` reads GeoJSON from
        stdin), or the footprints themselves as a GeoDataFrame.
    layers : str, Path or Manifest, optional
        The layer manifest; when omitted, ``THREELINES_LAYERS`` or a
        ``threelines.toml`` names it, else the bundled sample is used (with a
        warning, and the sample mark in every report).
    rules : str, Path or RuleSet, optional
        The rule file; the manifest's ``rules`` when omitted, else the
        configured or the sample's.
    crs : optional
        The footprint's CRS when the file has none.
    encoding : str, optional
        The footprint's attribute encoding (e.g. ``GBK``).
    overrides : dict, optional
        Project attributes applied to every feature (``industry``, ``kind``, ...).

    Returns
    -------
    Screening
        One :class:`Verdict` per usable feature, and a message per feature
        that could not be used.

    Raises
    ------
    ThreelinesError
        For an unusable manifest, rule file or footprint file.

    Examples
    --------
    >>> result = screen("data/sample/projects/p05_chemical_outside_park.geojson")  # doctest: +SKIP
    >>> result.verdicts[0].verdict  # doctest: +SKIP
    'reject'
    """
    manifest = layers if isinstance(layers, Manifest) else load_manifest(sample.resolve_layers(layers))
    ruleset = rules if isinstance(rules, RuleSet) else load_rules(sample.resolve_rules(rules, manifest.rules), manifest)
    if _is_frame(footprint):
        label = footprint.attrs.get("label", "<frame>")
        projects = projects_from_frame(
            footprint, manifest.working_crs, label=label, crs=crs, overrides=overrides, line_widths=manifest.line_widths
        )
    else:
        projects = read_projects(
            footprint, manifest.working_crs, crs=crs, encoding=encoding, overrides=overrides,
            line_widths=manifest.line_widths,
        )  # fmt: skip
    results = screen_checked(projects, manifest, ruleset, *_layer_reading(manifest))
    screened = [i for i, r in enumerate(results) if isinstance(r, Verdict)]
    return Screening(
        verdicts=[results[i] for i in screened],
        problems=list(projects.problems) + [r for r in results if isinstance(r, str)],
        footprints=[projects.geometry[i] for i in screened],
        crs=projects.crs,
    )


def screen_checked(
    projects: Projects,
    manifest: Manifest,
    rules: RuleSet,
    layer_cache: dict[str, LayerData] | None = None,
    cache_dir: Path | None = None,
) -> list[Verdict | str]:
    """Screen projects, refusing those that lie where the layers cannot judge them.

    A footprint outside the extent of every layer, or (with a unit layer)
    outside every control unit, is almost always in the wrong CRS or the
    wrong jurisdiction: a "pass" for it would be a confident wrong answer.
    ``layer_cache`` and ``cache_dir`` are as for :func:`screen_projects`.

    Returns
    -------
    list of Verdict or str
        Per project, in order: its verdict, or the message saying why it was
        not screened.
    """
    verdicts: list[Verdict | str] = list(screen_projects(projects, manifest, rules, layer_cache, cache_dir))
    where = (
        f"{manifest.jurisdiction_name} ({manifest.path}); give the layers of its jurisdiction with --layers, "
        "or check its CRS (--crs)"
    )
    for p in _outside_extent(projects, manifest):
        verdicts[p] = f"{projects.source}: project {projects.attrs[p]['id']!r}: lies outside the layers of {where}"
    if manifest.unit_layer is not None:
        for p, verdict in enumerate(verdicts):
            if isinstance(verdict, Verdict) and not verdict.units:
                project = f"{projects.source}: project {projects.attrs[p]['id']!r}"
                verdicts[p] = f"{project}: lies outside every control unit of {where}"
    return verdicts


def screen_projects(
    projects: Projects,
    manifest: Manifest,
    rules: RuleSet,
    layer_cache: dict[str, LayerData] | None = None,
    cache_dir: Path | None = None,
) -> list[Verdict]:
    """Screen projects already in the working CRS (the whole flow, step by step).

    Parameters
    ----------
    projects : Projects
    manifest : Manifest
    rules : RuleSet
    layer_cache : dict, optional
        Layers read whole, by name, kept between calls (for many chunks in
        one process); without it only the features near the projects are read.
    cache_dir : Path, optional
        The prepared-layer cache folder for layers read whole (see
        :mod:`threelines.layers.cache`); None: no disk cache.

    Returns
    -------
    list of Verdict
        In the order of ``projects``.
    """
    if len(projects) == 0:
        return []
    with collector_held():
        plan = compile_rules(rules, manifest, projects)
        measured = measure_layers(plan, projects, manifest, layer_cache, cache_dir)
        decisions = decide_rules(plan, measured, projects.geometry)
        triggers = build_triggers(rules.rules, measured, decisions, len(projects))
        return group_verdicts(plan, measured, decisions, triggers, projects.plane_area_m2, manifest.jurisdiction)


#: A one-off screening reads the layers whole, through the prepared-layer cache, when their files come to at most
#: this many bytes in all: from the cache that takes milliseconds, less than reading the features near the
#: footprints from each file (GDAL, and a reprojection per layer). Larger layers are read near the footprints.
WHOLE_LAYERS_BYTES = 16 * 1024**2


def _layer_reading(manifest: Manifest) -> tuple[dict[str, LayerData] | None, Path | None]:
    """The ``layer_cache`` and ``cache_dir`` for a one-off screening: whole and cached for small layers, else near."""
    from threelines.cachedir import cache_folder
    from threelines.report.provenance import data_files

    total = 0
    for spec in manifest.layers.values():
        if spec.role == "raster":
            continue
        if spec.source is not None:
            return None, None  # a database table is read near the footprints, through its index
        try:
            total += sum(path.stat().st_size for path in data_files(spec.path))
        except OSError:
            return None, None  # reading the layer says what is wrong
    return ({}, cache_folder()) if total <= WHOLE_LAYERS_BYTES else (None, None)


def _is_frame(value: object) -> bool:
    """Whether ``value`` is a GeoDataFrame, without importing geopandas: a caller that made one has imported it."""
    geopandas = sys.modules.get("geopandas")
    return geopandas is not None and isinstance(value, geopandas.GeoDataFrame)


def _outside_extent(projects: Projects, manifest: Manifest) -> set[int]:
    """Projects whose footprint misses the box around all the manifest's layers.

    A footprint whose bounds lie within the box's lies in the box: only the
    others (near its edges, or far off) are asked of GEOS.
    """
    if not len(projects):
        return set()
    box = extent_box(manifest)
    x0, y0, x1, y1 = shapely.bounds(box)
    bounds = shapely.bounds(projects.geometry)  # an empty footprint's are NaN: asked of GEOS
    inside = (bounds[:, 0] >= x0) & (bounds[:, 1] >= y0) & (bounds[:, 2] <= x1) & (bounds[:, 3] <= y1)
    asked = np.flatnonzero(~inside)
    return set(asked[~shapely.intersects(projects.geometry[asked], box)].tolist())


#: The box of each manifest's extent in its working CRS, by the CRS object's id (hashing a CRS writes its WKT).
_EXTENT_BOXES: dict[int, tuple] = {}


def extent_box(manifest: Manifest):
    """The layers' lon/lat extent as a box in the working CRS (kept: a transformer takes ~10 ms to build)."""
    from pyproj import CRS

    from threelines.input.crs import CGCS2000, kept_transformer

    crs, extent = manifest.working_crs, tuple(manifest.extent)
    kept = _EXTENT_BOXES.get(id(crs))
    if kept is None or kept[0] is not crs or kept[1] != extent:
        to_working = kept_transformer(CRS.from_user_input(CGCS2000), crs)  # a CGCS2000 footprint's, when there is one
        kept = (crs, extent, shapely.box(*to_working.transform_bounds(*extent, densify_pts=21)))
        _EXTENT_BOXES[id(crs)] = kept
    return kept[2]
