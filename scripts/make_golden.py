"""Write the golden results: the 13 sample projects and 2,000 generated ones, screened against the sample.

The generated projects (seeded) are polygons, lines with a width and points
with or without a radius, spread over the sample county and past its edges,
a third of them placed on a feature of some layer so that every rule meets
its features; industries, emissions, fuel, water and missing attributes are
drawn so that every rule and list clause fires (or is left unresolved).

``tests/test_golden.py`` screens the same projects again and compares each
record field by field: a change of the engine must not change an answer.

Usage::

    .venv/bin/python scripts/make_golden.py [--out tests/golden/results.jsonl.gz]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import logging
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pyogrio
import shapely

from threelines.engine.screen import screen
from threelines.layers.manifest import load_manifest
from threelines.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
GOLDEN = ROOT / "tests" / "golden" / "results.jsonl.gz"
#: Metres, for building footprints of a known size (CGCS2000 3-degree Gauss-Kruger CM 117E).
METRIC_CRS = 4548
N_GENERATED = 2000
SEED = 16

#: Industries across the prefixes the rules and the access list name, some too coarse to decide,
#: and None (not given).
INDUSTRIES = [
    "C2614", "C2614", "C2614", "C2621", "C2621", "C26", "C", "C2211", "C2221", "C2521", "C3110", "C3011", "C3041", "D4411", "N7861",
    "B0610", "E4812", "E4851", "C2921", "C3982", "C2511", "C1311", "C1411", "C1910", "C3360", "C1711",
    "C1713", "A0311", "G5942", "G5920", "C3311", "C2710", "C1431", "C25", None,
]  # fmt: skip
FUELS = ["coal", "heavy_oil", "gas", "electricity", "diesel", None]
WATER_SOURCES = ["groundwater", "municipal", "surface", None]
EMISSIONS = ("emit_so2", "emit_nox", "emit_vocs", "emit_pm", "emit_cod", "emit_nh3n")


def generated_projects(n: int = N_GENERATED, seed: int = SEED) -> gpd.GeoDataFrame:
    """``n`` projects of every footprint kind and attribute mix, in lon/lat (EPSG:4490).

    Parameters
    ----------
    n : int
    seed : int

    Returns
    -------
    geopandas.GeoDataFrame
    """
    rng = np.random.default_rng(seed)
    county = gpd.read_file(SAMPLE / "layers" / "county.gpkg").to_crs(METRIC_CRS).geometry.iloc[0]
    anchors = []  # a point on each feature of each vector layer: rules meet their features there
    for name in ("redline.gpkg", "units.gpkg", "quality.geojson", "caps.shp"):
        layer = gpd.read_file(SAMPLE / "layers" / name).to_crs(METRIC_CRS)
        for geom in layer.geometry.values:  # each feature alike, small or large
            anchors += [shapely.point_on_surface(geom)] * 4
            anchors += [shapely.Point(xy) for xy in shapely.get_coordinates(geom)[::25][:4]]  # its edge too
    # Each control unit with the industries its own clauses name: small units get their clauses tried too.
    units = gpd.read_file(SAMPLE / "layers" / "units.gpkg").to_crs(METRIC_CRS)
    clauses = load_rules(SAMPLE / "rules.yaml", load_manifest(SAMPLE / "layers.yaml")).clauses
    targets = [
        (shapely.point_on_surface(geom), [i for c in clauses if c.scope == code for i in c.industry] or [None])
        for code, geom in zip(units["code"], units.geometry.values, strict=True)
    ]
    minx, miny, maxx, maxy = county.bounds
    margin = 3000.0
    rows, geoms = [], []
    for i in range(n):
        target = None
        if rng.random() < 0.15:
            target = targets[rng.integers(len(targets))]
            x, y = target[0].x + rng.normal(0, 100), target[0].y + rng.normal(0, 100)
        elif rng.random() < 0.35:
            base = anchors[rng.integers(len(anchors))]
            x, y = base.x + rng.normal(0, 400), base.y + rng.normal(0, 400)
        else:
            x, y = rng.uniform(minx - margin, maxx + margin), rng.uniform(miny - margin, maxy + margin)
        shape = rng.choice(["polygon", "line", "point"], p=[0.6, 0.2, 0.2])
        row: dict = {"id": f"G{i:04d}", "name": f"generated {i}"}
        if shape == "polygon":
            k = int(rng.integers(3, 10))
            t = np.sort(rng.uniform(0, 2 * np.pi, k))
            r = rng.uniform(40, 900) * rng.uniform(0.5, 1.0, k)
            geom = shapely.Polygon(np.column_stack([x + r * np.cos(t), y + r * np.sin(t)]))
            if not geom.is_valid or geom.area < 1.0:
                geom = shapely.Point(x, y).buffer(rng.uniform(30, 500), 8)
            if rng.random() < 0.1:
                row["kind"] = "area"
        elif shape == "line":
            k = int(rng.integers(2, 6))
            steps = rng.normal(0, rng.uniform(200, 1500), (k, 2))
            geom = shapely.LineString(np.array([x, y]) + np.cumsum(steps, axis=0))
            if rng.random() < 0.8:
                row["width"] = float(rng.choice([6.0, 10.0, 30.0, 60.0]))
        else:
            geom = shapely.Point(x, y)
            if rng.random() < 0.6:
                row["radius"] = float(rng.choice([5.0, 50.0, 200.0, 600.0]))
        industry = INDUSTRIES[rng.integers(len(INDUSTRIES))]
        if target is not None and rng.random() < 0.6:
            industry = target[1][rng.integers(len(target[1]))]
        if shape == "line" and "width" not in row:
            industry = rng.choice(["E4812", "E4851"])  # the manifest gives these a default width
        row["industry"] = industry
        for name in EMISSIONS:
            if rng.random() < 0.35:
                row[name] = float(rng.choice([0.0, 0.5, 3.0, 40.0, 900.0]))
        if rng.random() < 0.4:
            row["water_m3"] = float(rng.choice([0.0, 5e3, 2e5, 5e6, 8e7]))
        if rng.random() < 0.4:
            row["fuel"] = FUELS[rng.integers(len(FUELS))]
        if rng.random() < 0.4:
            row["water_source"] = WATER_SOURCES[rng.integers(len(WATER_SOURCES))]
        rows.append(row)
        geoms.append(geom)
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=METRIC_CRS).to_crs(4490)
    frame.attrs["label"] = "generated"
    return frame


def golden_records() -> list[bytes]:
    """The JSON records of the sample projects and the generated ones, one line each, sorted.

    A project that cannot be screened (outside the layers) gives ``{"project": id, "error": message}``.
    Messages naming the sample manifest's path name it from the checkout's root (``<checkout>/data/...``),
    so the file is the same wherever the checkout lies.
    """
    manifest = load_manifest(SAMPLE / "layers.yaml")
    rules = load_rules(SAMPLE / "rules.yaml", manifest)
    sample = pyogrio.read_dataframe(SAMPLE / "projects.gpkg", layer="projects")
    sample.attrs["label"] = "projects.gpkg"
    lines = []
    for frame in (sample, generated_projects()):
        result = screen(frame, manifest, rules)
        for verdict in result.verdicts:
            lines.append(record_line(verdict.to_dict()))
        for problem in result.problems:
            lines.append(record_line({"error": problem}))
    root = orjson.dumps(str(ROOT))[1:-1]
    return sorted(line.replace(root, b"<checkout>") for line in lines)


def record_line(record: dict) -> bytes:
    """One record as batch results write it (keys sorted)."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def fired(lines: list[bytes]) -> collections.Counter:
    """How often each rule or clause id fired (a trigger), or stated a requirement."""
    counts: collections.Counter = collections.Counter()
    for line in lines:
        record = orjson.loads(line)
        counts.update(t["rule"] for t in record.get("triggers", ()))
        counts.update(r["clause"] for r in record.get("requirements", ()))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the default widths given to lines are expected here
    lines = golden_records()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime 0: the same results give the same bytes
    args.out.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines), compresslevel=9, mtime=0))
    counts = fired(lines)
    manifest = load_manifest(SAMPLE / "layers.yaml")
    rules = load_rules(SAMPLE / "rules.yaml", manifest)
    ids = [r.id for r in rules.rules] + [c.id for c in rules.clauses]
    for rule_id in ids:
        print(f"{rule_id:28} {counts[rule_id]:6d}")
    never = [i for i in ids if not counts[i]]
    print(f"{len(lines)} records, {args.out.stat().st_size / 1e6:.1f} MB in {args.out}")
    if never:
        print(f"never fired: {', '.join(never)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
