"""Time threelines on the bundled sample: start-up, one project, and many random projects.

Usage::

    .venv/bin/python benchmarks/bench_screen.py [--projects 2000] [--repeat 5]

Prints the median wall time and the median user+sys CPU time of each
whole-process run (``threelines`` as a user starts it; on a shared machine the
CPU time is the steadier figure), the in-process throughput of
:func:`threelines.screen_projects` on random footprints in the sample county,
and the peak memory of this process. One project is screened twice over: with
an empty cache folder each run (the manifest and rules checked afresh, the
layers read from their files) and with the cache the first run left; and once
more with the package's compiled bytecode kept, as an installed package has it
(``PYTHONDONTWRITEBYTECODE`` in the environment, or a source tree that cannot be
written to, makes every run compile the package's modules again). It checks
figures, not correctness: the tests do that.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
CLI = [sys.executable, "-m", "threelines"]


def wall(cmd: list[str], repeat: int, *, cold: bool = False, bytecode: bool = False) -> tuple[float, float]:
    """Median wall time and median user+sys CPU time of a command, in seconds.

    The runs share one cache folder, warmed by a first run that is not
    counted; ``cold`` empties it before each run instead. ``bytecode`` keeps
    the modules' compiled bytecode (in a folder of its own) from that first run on.
    """
    times, cpus = [], []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as cache:
        env = {**os.environ, "THREELINES_CACHE": cache}
        if bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(cache) / "bytecode")
        if not cold:
            subprocess.run(cmd, check=True, capture_output=True, env=env)
        for _ in range(repeat):
            if cold:
                shutil.rmtree(cache, ignore_errors=True)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpus)


def random_projects(n: int, seed: int = 7) -> gpd.GeoDataFrame:
    """Rectangles of 1 ha to 1 km2 scattered over the county, a tenth of them roads."""
    rng = np.random.default_rng(seed)
    county = gpd.read_file(SAMPLE / "layers" / "county.gpkg").to_crs(4548).geometry.iloc[0]
    minx, miny, maxx, maxy = county.bounds
    xs, ys = rng.uniform(minx, maxx, n * 3), rng.uniform(miny, maxy, n * 3)
    inside = shapely.contains_xy(county, xs, ys)
    xs, ys = xs[inside][:n], ys[inside][:n]
    side = np.sqrt(rng.uniform(1e4, 1e6, n))
    geoms = shapely.box(xs - side / 2, ys - side / 2, xs + side / 2, ys + side / 2)
    roads = rng.random(n) < 0.1
    geoms[roads] = shapely.linestrings(
        np.stack([np.column_stack([xs[roads] - side[roads] * 2, ys[roads]]),
                  np.column_stack([xs[roads] + side[roads] * 2, ys[roads]])], axis=1)
    )  # fmt: skip
    codes = rng.choice(["C2614", "C2221", "C3982", "G5920", "E4812", "C1431"], n)
    return gpd.GeoDataFrame(
        {
            "id": [f"R{i:06d}" for i in range(n)],
            "industry": codes,
            "width": np.where(roads, 30.0, np.nan),
            "emit_nox": rng.uniform(0, 5, n),
            "emit_vocs": rng.uniform(0, 5, n),
        },
        geometry=geoms,
        crs=4548,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=2000, help="random projects for the throughput row")
    parser.add_argument("--repeat", type=int, default=5, help="runs per whole-process timing")
    args = parser.parse_args()

    from threelines.engine.screen import screen_projects
    from threelines.input.footprint import projects_from_frame
    from threelines.layers.manifest import load_manifest
    from threelines.rules import load_rules

    one = [*CLI, "screen", str(SAMPLE / "projects" / "P05.geojson"), "--format", "json"]
    rows = [
        ("threelines --help (whole process)", wall([*CLI, "--help"], args.repeat)),
        ("screen 1 project, sample layers, empty cache (whole process)", wall(one, args.repeat, cold=True)),
        ("screen 1 project, sample layers (whole process)", wall(one, args.repeat)),
        ("screen 1 project, sample layers, bytecode kept (whole process)", wall(one, args.repeat, bytecode=True)),
        (
            "screen 13 sample projects (whole process)",
            wall([*CLI, "screen", str(SAMPLE / "projects.gpkg"), "--format", "json"], args.repeat),
        ),
        (
            "HTML report of 1 project, map included (whole process)",
            wall([*CLI, "screen", str(SAMPLE / "projects" / "P02.geojson"), "--format", "html"], args.repeat),
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        zones = str(Path(tmp) / "zones.gpkg")
        siting = [*CLI, "-q", "siting", "--industry", "C2614", "--emit-vocs", "10", "-o", zones, "--overwrite"]
        rows.append(("siting a chemical plant over the county (whole process)", wall(siting, 1)))
    manifest = load_manifest(SAMPLE / "layers.yaml")
    rules = load_rules(SAMPLE / "rules.yaml", manifest)
    frame = random_projects(args.projects)
    start = time.perf_counter()
    projects = projects_from_frame(frame, manifest.working_crs)
    verdicts = screen_projects(projects, manifest, rules)
    elapsed = time.perf_counter() - start
    rows.append((f"screen {len(verdicts)} random projects (in process)", (elapsed, None)))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  wall s   cpu s")
    for label, (seconds, cpu) in rows:
        print(f"{label:<{width}}  {seconds:6.3f}  {'' if cpu is None else f'{cpu:6.3f}'}")
    print(f"{'throughput (random projects / s)':<{width}}  {len(verdicts) / elapsed:7.0f}")
    print(f"{'peak memory of the in-process run (MiB)':<{width}}  {peak_mib:7.0f}")
    counts = {v: sum(1 for x in verdicts if x.verdict == v) for v in ("pass", "conditional", "reject")}
    print(f"verdicts of the random projects: {counts}")


if __name__ == "__main__":
    main()
