"""Write a siting: zones (and candidate areas) as GeoPackage or GeoJSON, a PNG map, an HTML report, a summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from threelines.errors import OutputError
from threelines.manifest import Manifest
from threelines.rules import RuleSet


def write_siting(
    manifest: Manifest,
    rules: RuleSet,
    profile: dict[str, Any],
    output: str | Path,
    *,
    region_file: str | None = None,
    adcode: str | None = None,
    crs: object = None,
    min_area_ha: float | None = None,
    lang: str = "en",
    overwrite: bool = False,
) -> list[str]:
    """Zone a region for a profile and write every output; return the summary lines for stdout.

    ``output`` (``.gpkg`` or ``.geojson``) gets the zones in EPSG:4490 and,
    with ``min_area_ha``, the candidate areas (a second layer, or
    ``NAME.candidates.geojson``); ``NAME.png`` and ``NAME.html`` are written
    beside it. Nothing is replaced without ``overwrite``.
    """
    import shapely

    from threelines.layers import read_layer
    from threelines.provenance import provenance
    from threelines.report import write_output
    from threelines.report.map import render_zones
    from threelines.report.pages import siting_page
    from threelines.siting import region_from_boundary, siting

    output = Path(output)
    stem = output.with_suffix("")
    candidates_json = output.with_name(f"{stem.name}.candidates.geojson")
    targets = [output, stem.with_suffix(".png"), stem.with_suffix(".html")]
    if min_area_ha and output.suffix.lower() == ".geojson":
        targets.append(candidates_json)
    for target in targets:
        if target.exists() and not overwrite:
            raise OutputError(f"{target}: exists; give --overwrite to replace it, or another -o")

    region, where = None, "the manifest's boundary"
    if region_file:
        from threelines.footprint import read_projects

        projects = read_projects(region_file, manifest.working_crs, crs=crs)
        region, where = shapely.union_all(projects.geometry), region_file
    elif adcode:
        region, where = region_from_boundary(manifest, adcode), f"adcode {adcode}"
    result = siting(manifest, rules, profile, region)
    units = read_layer(manifest.unit_layer, manifest.working_crs) if manifest.unit_layer else None
    candidates = result.candidates(min_area_ha * 1e4, units) if min_area_ha else None

    _write_layers(result.zones, candidates, output, candidates_json, overwrite)
    png = render_zones(result, candidates, lang, "png")
    _write_bytes(png, stem.with_suffix(".png"))
    block = provenance(manifest, rules, source=region_file, options={"adcode": adcode, "crs": crs, **profile})
    doc = _document(result, candidates, profile, where, lang, block)
    write_output(siting_page(doc, render_zones(result, candidates, lang, "svg")), stem.with_suffix(".html"),
                 overwrite=True)  # fmt: skip
    return _summary_lines(result, candidates, targets)


def _write_layers(zones, candidates, output: Path, candidates_json: Path, overwrite: bool) -> None:
    """Zones (and candidates) in EPSG:4490, written to a temporary file first."""
    import pyogrio

    from threelines.report.geo import _temp_beside

    gpkg = output.suffix.lower() == ".gpkg"
    layers = [("zones", zones, output)]
    if candidates is not None:
        layers.append(("candidates", candidates, output if gpkg else candidates_json))
    tmp = _temp_beside(output) if gpkg else None
    try:
        for layer, frame, target in layers:
            data = frame.to_crs(4490)
            if gpkg:
                pyogrio.write_dataframe(data, tmp, layer=layer, driver="GPKG", append=layer != "zones")
            else:
                single = _temp_beside(target)
                pyogrio.write_dataframe(data, single, layer=layer, driver="GeoJSON")
                os.replace(single, target)
        if gpkg:
            os.replace(tmp, output)
    except (OSError, pyogrio.errors.DataSourceError) as exc:
        raise OutputError(f"{output}: cannot write the zones ({exc})") from None


def _write_bytes(data: bytes, path: Path) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write it ({exc.strerror})") from None


def _document(result, candidates, profile, where: str, lang: str, block) -> dict[str, Any]:
    """The content of the siting report, in one language."""
    from threelines import __version__
    from threelines.report.document import provenance_rows
    from threelines.report.i18n import words

    w = words(lang)
    summary = result.summary()
    return {
        "lang": lang,
        "w": w,
        "generated_by": w["generated_by"].format(version=__version__),
        "region": where,
        "profile": ", ".join(f"{k}={v}" for k, v in profile.items()) or w["not_given"],
        "summary": [
            {"outcome": o, "word": w[o], "km2": f"{a / 1e6:,.2f}", "ha": f"{a / 1e4:,.2f}", "mu": f"{a * 0.0015:,.0f}"}
            for o, a in summary.items()
        ],
        "zones": [
            {"outcome": z.outcome, "word": w[z.outcome], "rules": z.rules.replace(",", ", "), "ha": f"{z.area_ha:,.2f}"}
            for z in result.zones.itertuples()
        ],
        "candidates": None if candidates is None else [_candidate(c, w) for c in candidates.itertuples()],
        "provenance": provenance_rows(block, lang),
    }


def _candidate(c, w: dict[str, str]) -> dict[str, Any]:
    return {
        "rank": c.rank, "outcome": c.outcome, "word": w[c.outcome], "ha": f"{c.area_ha:,.2f}",
        "lon": f"{c.lon:.5f}", "lat": f"{c.lat:.5f}", "units": getattr(c, "units", ""),
    }  # fmt: skip


def _summary_lines(result, candidates, written) -> list[str]:
    """Area by outcome (km2, ha, mu), the candidates, and the files written."""
    lines = [f"{'outcome':<12} {'km2':>10} {'ha':>12} {'mu':>14}"]
    for outcome, area in result.summary().items():
        lines.append(f"{outcome:<12} {area / 1e6:>10,.2f} {area / 1e4:>12,.2f} {area * 15 / 1e4:>14,.0f}")
    if candidates is not None:
        lines.append(f"{len(candidates)} candidate area(s):")
        for c in candidates.itertuples():
            units = f" in {c.units}" if getattr(c, "units", "") else ""
            lines.append(f"  {c.rank}. {c.outcome}, {c.area_ha:,.2f} ha, at {c.lon:.5f}E {c.lat:.5f}N{units}")
    lines.append(f"{len(result.zones)} zones from {result.pieces} overlay pieces; wrote {', '.join(map(str, written))}")
    return lines
