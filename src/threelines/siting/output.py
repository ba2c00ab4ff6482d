"""Write a siting: zones (and candidate areas) as GeoPackage or GeoJSON, a PNG map, an HTML report, a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from threelines.engine.measure import M2_PER_MU
from threelines.errors import OutputError
from threelines.layers.spec import Manifest
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
    encoding: str | None = None,
    min_area_ha: float | None = None,
    lang: str = "en",
    overwrite: bool = False,
) -> list[str]:
    """Zone a region for a profile and write every output; return the summary lines for stdout.

    ``output`` (``.gpkg`` or ``.geojson``) gets the zones in EPSG:4490 and,
    with ``min_area_ha``, the candidate areas (a second layer, or
    ``NAME.candidates.geojson``); ``NAME.png`` and ``NAME.html`` are written
    beside it. ``crs`` and ``encoding`` describe ``region_file`` (for a file
    without them, e.g. a shapefile without .prj or .cpg). Nothing is replaced
    without ``overwrite``.
    """
    import shapely

    from threelines.layers.read import read_layer
    from threelines.report import write_output
    from threelines.report.map import render_zones
    from threelines.report.pages import siting_page
    from threelines.report.provenance import provenance
    from threelines.siting.zones import region_from_boundary, siting

    output = Path(output)
    stem = output.with_suffix("")
    candidates_json = output.with_name(f"{stem.name}.candidates.geojson")
    targets = [output, stem.with_suffix(".png"), stem.with_suffix(".html")]
    if min_area_ha and output.suffix.lower() == ".geojson":
        targets.append(candidates_json)
    for target in targets:
        if target.exists() and not overwrite:
            raise OutputError(f"{target}: exists; give --overwrite to replace it, or another -o")
    if not output.parent.is_dir():
        raise OutputError(f"{output}: folder {output.parent} does not exist; create it or give another -o")

    region, where = None, "the manifest's boundary"
    if region_file:
        from threelines.input.footprint import read_projects
        from threelines.siting.zones import SitingError

        projects = read_projects(region_file, manifest.working_crs, crs=crs, encoding=encoding)
        if projects.problems:
            raise SitingError(projects.problems[0])
        areas = projects.geometry[shapely.area(projects.geometry) > 0] if len(projects) else projects.geometry
        if not len(areas):
            raise SitingError(f"{region_file}: holds no polygon; the region to zone must be an area")
        # The report names the region by its features' names too (read with --encoding where given).
        names = list(dict.fromkeys(str(a["name"]) for a in projects.attrs if a.get("name")))
        shown = "、".join(names[:5]) + ("…" if len(names) > 5 else "")
        region, where = shapely.union_all(areas), f"{region_file} ({shown})" if names else region_file
    elif adcode:
        region, where = region_from_boundary(manifest, adcode), f"adcode {adcode}"
    result = siting(manifest, rules, profile, region)
    units = read_layer(manifest.unit_layer, manifest.working_crs) if manifest.unit_layer else None
    candidates = result.candidates(min_area_ha * 1e4, units) if min_area_ha else None

    _write_layers(result.zones, candidates, output, candidates_json)
    png = render_zones(result, candidates, lang, "png")
    _write_bytes(png, stem.with_suffix(".png"))
    block = provenance(
        manifest, rules, source=region_file, options={"adcode": adcode, "crs": crs, "encoding": encoding, **profile}
    )
    doc = _document(result, candidates, profile, where, lang, block)
    sample = (manifest.jurisdiction or {}).get("sample")  # the bundled synthetic layers: say so on every output
    doc["sample_mark"] = doc["w"]["sample_mark"] if sample else ""
    write_output(siting_page(doc, render_zones(result, candidates, lang, "svg")), stem.with_suffix(".html"),
                 overwrite=True)  # fmt: skip
    lines = _summary_lines(result, candidates, targets, lang)
    return [f"*** {doc['sample_mark'] if lang == 'zh' else sample} ***", *lines] if sample else lines


def _write_layers(zones, candidates, output: Path, candidates_json: Path) -> None:
    """Zones (and candidates) in EPSG:4490, each file written to a temporary one first."""
    import pyogrio

    from threelines.report.geo import written_atomically

    if output.suffix.lower() == ".gpkg":
        with written_atomically(output) as tmp:
            pyogrio.write_dataframe(zones.to_crs(4490), tmp, layer="zones", driver="GPKG")
            if candidates is not None:
                pyogrio.write_dataframe(candidates.to_crs(4490), tmp, layer="candidates", driver="GPKG", append=True)
        return
    for frame, target, layer in ((zones, output, "zones"), (candidates, candidates_json, "candidates")):
        if frame is not None:
            with written_atomically(target) as tmp:
                pyogrio.write_dataframe(frame.to_crs(4490), tmp, layer=layer, driver="GeoJSON")


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
        "summary": [_area_row(o, a, w) for o, a in summary.items()],
        "zones": [
            {"outcome": z.outcome, "word": w[z.outcome], "rules": z.rules.replace(",", ", "), "ha": f"{z.area_ha:,.2f}"}
            for z in result.zones.itertuples()
        ],
        "candidates": None if candidates is None else [_candidate(c, w) for c in candidates.itertuples()],
        "provenance": provenance_rows(block, lang),
    }


def _area_row(outcome: str, m2: float, w: dict[str, str]) -> dict[str, str]:
    return {"outcome": outcome, "word": w[outcome], "km2": f"{m2 / 1e6:,.2f}", "ha": f"{m2 / 1e4:,.2f}",
            "mu": f"{m2 / M2_PER_MU:,.0f}"}  # fmt: skip


def _candidate(c, w: dict[str, str]) -> dict[str, Any]:
    return {
        "rank": c.rank, "outcome": c.outcome, "word": w[c.outcome], "ha": f"{c.area_ha:,.2f}",
        "lon": f"{c.lon:.5f}", "lat": f"{c.lat:.5f}", "units": getattr(c, "units", ""),
    }  # fmt: skip


def _summary_lines(result, candidates, written, lang: str = "en") -> list[str]:
    """Area by outcome (km2, ha, mu), the candidates, and the files written; Chinese labels under ``zh``."""
    if lang == "zh":
        return _summary_lines_zh(result, candidates, written)
    lines = [f"{'outcome':<12} {'km2':>10} {'ha':>12} {'mu':>14}"]
    for outcome, area in result.summary().items():
        lines.append(f"{outcome:<12} {area / 1e6:>10,.2f} {area / 1e4:>12,.2f} {area / M2_PER_MU:>14,.0f}")
    if candidates is not None:
        lines.append(f"{len(candidates)} candidate area(s):")
        for c in candidates.itertuples():
            units = f" in {c.units}" if getattr(c, "units", "") else ""
            lines.append(f"  {c.rank}. {c.outcome}, {c.area_ha:,.2f} ha, at {c.lon:.5f}E {c.lat:.5f}N{units}")
    lines.append(f"{len(result.zones)} zones from {result.pieces} overlay pieces; wrote {', '.join(map(str, written))}")
    return lines


def _summary_lines_zh(result, candidates, written) -> list[str]:
    """:func:`_summary_lines` in Chinese: 结果 / 平方千米 / 公顷 / 亩, outcomes as 通过, 有条件准入, 不予准入."""
    from threelines.report.i18n import TEXT_ZH, words

    w = words("zh")
    lines = [
        f"{_pad(TEXT_ZH['outcome'], 12)} {_pad(w['km2'], 10, '>')} {_pad(w['ha'], 12, '>')} {_pad(w['mu'], 14, '>')}"
    ]
    for outcome, area in result.summary().items():
        lines.append(f"{_pad(w[outcome], 12)} {area / 1e6:>10,.2f} {area / 1e4:>12,.2f} {area / M2_PER_MU:>14,.0f}")
    if candidates is not None:
        lines.append(TEXT_ZH["candidates"].format(n=len(candidates)))
        for c in candidates.itertuples():
            units = TEXT_ZH["candidate_units"].format(units=c.units) if getattr(c, "units", "") else ""
            lines.append(TEXT_ZH["candidate"].format(rank=c.rank, word=w[c.outcome], ha=f"{c.area_ha:,.2f}",
                                                     lon=f"{c.lon:.5f}", lat=f"{c.lat:.5f}", units=units))  # fmt: skip
    done = TEXT_ZH["siting_done"].format(
        pieces=result.pieces, zones=len(result.zones), written="、".join(map(str, written))
    )
    return [*lines, done]


def _pad(text: str, width: int, align: str = "<") -> str:
    """``text`` padded to ``width`` terminal columns (a hanzi takes two)."""
    import unicodedata

    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    space = " " * max(0, width - columns)
    return text + space if align == "<" else space + text
