"""Time and peak memory of reading big footprint inputs, against the same footprints from GeoPackage.

Two inputs a consultant may well send: one polygon of 1,000,000 vertices as
GeoJSON, and a corner-coordinate table (CSV) of 3,600 parcels. Each is read
with :func:`threelines.input.footprint.read_projects` in a fresh process (so that
the peak resident memory is that read's alone, imports included) next to
the same footprints written as a GeoPackage. The target: at most 2x the
GeoPackage's time and memory.

    .venv/bin/python benchmarks/big_inputs.py [--vertices N] [--parcels N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Ratio to the GeoPackage read that is still acceptable, for time and for memory.
TARGET = 2.0

_CHILD = """
import json, resource, sys, time
from threelines.input.footprint import read_projects
from threelines.layers.manifest import load_manifest
from threelines.sample import manifest_path
working = load_manifest(manifest_path()).working_crs
start = time.perf_counter()
projects = read_projects(sys.argv[1], working)
seconds = time.perf_counter() - start
try:  # the high-water mark of this process alone (ru_maxrss keeps the parent's across fork and exec)
    status = open("/proc/self/status").read()
    peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak, "projects": len(projects), "problems": len(projects.problems)}))
"""


def make_inputs(folder: Path, vertices: int, parcels: int) -> dict[str, tuple[Path, Path]]:
    """Write the big inputs and their GeoPackage twins; return ``{case: (input, geopackage)}``."""
    import geopandas as gpd
    import numpy as np
    import pyogrio
    import shapely

    # A star-shaped polygon around the sample county's centre, so that every vertex counts.
    angle = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    radius = 0.02 * (1 + 0.1 * np.sin(angle * 97))
    ring = np.column_stack([116.05 + radius * np.cos(angle), 28.6 + radius * np.sin(angle)])
    polygon = gpd.GeoDataFrame({"id": ["big"], "industry": ["G5920"]}, geometry=[shapely.Polygon(ring)], crs=4490)
    pyogrio.write_dataframe(polygon, folder / "polygon.geojson")
    pyogrio.write_dataframe(polygon, folder / "polygon.gpkg")

    # 3,600 parcels of 5 corners on a 60 x 60 grid, survey X (northing) / Y (prefixed easting).
    rng = np.random.default_rng(5)
    rows = []
    squares = []
    for k in range(parcels):
        x0, y0 = 39_430_000 + (k % 60) * 600.0, 3_150_000 + (k // 60) * 600.0
        size = rng.uniform(100, 400)
        corners = [(x0, y0), (x0 + size, y0), (x0 + size, y0 + size / 2), (x0 + size / 2, y0 + size), (x0, y0 + size)]
        rows += [f"P{k + 1},{i + 1},{y:.3f},{x:.3f}" for i, (x, y) in enumerate(corners)]
        squares.append(shapely.Polygon(corners))
    (folder / "corners.csv").write_text("地块,点号,X,Y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    table = gpd.GeoDataFrame({"id": [f"P{k + 1}" for k in range(parcels)]}, geometry=squares, crs=4527)
    pyogrio.write_dataframe(table, folder / "corners.gpkg")
    return {
        f"{vertices:,}-vertex polygon, GeoJSON": (folder / "polygon.geojson", folder / "polygon.gpkg"),
        f"{parcels:,}-parcel corner table, CSV": (folder / "corners.csv", folder / "corners.gpkg"),
    }


def measure(path: Path, repeat: int) -> dict:
    """The fastest of ``repeat`` reads in fresh processes, with the peak memory of that process."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vertices", type=int, default=1_000_000, help="vertices of the big polygon")
    parser.add_argument("--parcels", type=int, default=3_600, help="parcels of the corner table")
    parser.add_argument("--repeat", type=int, default=3, help="reads of each file (the fastest counts)")
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="threelines-big-") as folder:
        started = time.perf_counter()
        cases = make_inputs(Path(folder), args.vertices, args.parcels)
        print(f"inputs written in {time.perf_counter() - started:.1f} s")
        print(
            f"{'input':40} {'time s':>8} {'peak MiB':>9} {'GPKG s':>8} {'GPKG MiB':>9} {'x time':>7} {'x mem':>6}  target"
        )
        for name, (given, twin) in cases.items():
            got, base = measure(given, args.repeat), measure(twin, args.repeat)
            if got["projects"] != base["projects"] or got["problems"]:
                raise SystemExit(f"{name}: read {got} but the GeoPackage {base}")
            ratio_t, ratio_m = got["seconds"] / base["seconds"], got["peak_mib"] / base["peak_mib"]
            ok = ratio_t <= TARGET and ratio_m <= TARGET
            failed |= not ok
            print(
                f"{name:40} {got['seconds']:8.2f} {got['peak_mib']:9.0f} {base['seconds']:8.2f} "
                f"{base['peak_mib']:9.0f} {ratio_t:7.2f} {ratio_m:6.2f}  {'pass' if ok else 'FAIL'} (<= {TARGET:g}x)"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
