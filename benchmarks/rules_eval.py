"""In-process rule evaluation: projects per second with the pairs already measured.

Generates projects against the sample (as ``scripts/make_golden.py`` does),
reads the layers whole once, measures the footprints against them once (the
whole measuring step: pairs, raster statistics, control units), then times
``screen_projects`` with that step answered from memory: what is left is the rule evaluation and the building of the
verdicts (and, with ``--records``, their JSON records). One process, one core.
The decisions the engine keeps between calls (:func:`~threelines.rules.decide.decide_cached`, and the
access-list rows of :func:`~threelines.engine.decisions.forget_joins`) are forgotten before each run, so every run decides its projects afresh, as a batch
meeting new projects does.

Usage::

    .venv/bin/python benchmarks/rules_eval.py [--projects 10000] [--repeat 5] [--records] [--profile] [--steps]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import logging
import pstats
import statistics
import sys
import time
from pathlib import Path

import orjson

from threelines.collector import collector_held
from threelines.engine import screen as screen_module
from threelines.engine.chunk_records import batch_records
from threelines.engine.decisions import forget_joins
from threelines.engine.json_values import JSON_OPTIONS
from threelines.input.footprint import projects_from_frame
from threelines.layers.manifest import load_manifest
from threelines.rules import load_rules
from threelines.rules.decide import forget_decisions

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def _generator():
    spec = importlib.util.spec_from_file_location("make_golden", ROOT / "scripts" / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generated_projects


def measured_once() -> None:
    """Make step 2 of the flow (:func:`~threelines.engine.pairs.measure_layers`) answer from memory after its first call.

    All of it is measurement, not rule evaluation: the pairs against each
    layer, the disc centres of point sites, the raster statistics (with their
    reprojection), the control units and their gaps. It is kept by the
    identity of the projects and the manifest (held with the answer, so that
    the ids stay theirs); every run still compiles the rules afresh.
    """
    measure = screen_module.measure_layers
    kept = {}

    def kept_measure(plan, projects, manifest, *rest):
        key = (id(projects), id(manifest))
        if key not in kept:
            kept[key] = (projects, manifest, measure(plan, projects, manifest, *rest))
        return kept[key][2]

    screen_module.measure_layers = kept_measure


#: The steps of the flow timed by ``--steps`` (step 2, measuring, answers from memory).
STEPS = ("compile_rules", "decide_rules", "build_triggers", "group_verdicts")


def timed_steps() -> dict[str, list[float]]:
    """Time each step of the flow in this process's CPU seconds: per step, one entry per call."""
    spent: dict[str, list[float]] = {name: [] for name in STEPS}
    for name in STEPS:
        step = getattr(screen_module, name)

        def timed(*args, _step=step, _spent=spent[name]):
            start = time.process_time()
            try:
                return _step(*args)
            finally:
                _spent.append(time.process_time() - start)

        setattr(screen_module, name, timed)
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--records", action="store_true", help="also build each verdict's JSON record (orjson)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile table of one run, whole")
    parser.add_argument("--steps", action="store_true", help="also print the median CPU time of each step")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    manifest = load_manifest(SAMPLE / "layers.yaml")
    rules = load_rules(SAMPLE / "rules.yaml", manifest)
    frame = _generator()(args.projects, seed=2026)
    projects = projects_from_frame(frame, manifest.working_crs, label="generated", line_widths=manifest.line_widths)
    cache: dict = {}

    if args.profile:  # the whole screen_projects, measuring included, as the table shows it
        screen_module.screen_projects(projects, manifest, rules, cache)  # layers read and prepared
        profile = cProfile.Profile()
        profile.enable()
        screen_module.screen_projects(projects, manifest, rules, cache)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)

    measured_once()

    def run():
        forget_decisions()
        forget_joins()
        with collector_held(settle=True):  # as a batch worker holds the collector over a chunk
            verdicts = screen_module.screen_projects(projects, manifest, rules, cache)
            if args.records:
                for record in batch_records(verdicts):
                    orjson.dumps(record, option=JSON_OPTIONS)
        return verdicts

    run()  # reads the layers, measures and remembers
    spent = timed_steps() if args.steps else {}
    times, cpu = [], []  # wall and this process's CPU time: the machine may be shared
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        verdicts = run()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    fired = sum(len(v.triggers) for v in verdicts)
    wall, busy = statistics.median(times), statistics.median(cpu)
    print(
        f"{len(projects)} projects, {fired} triggers, {args.repeat} runs{' with records' if args.records else ''}: "
        f"median wall {wall * 1e3:.0f} ms (min {min(times) * 1e3:.0f}) = {len(projects) / wall:,.0f} projects/s; "
        f"median CPU {busy * 1e3:.0f} ms (min {min(cpu) * 1e3:.0f}) = {len(projects) / busy:,.0f} projects/s"
    )
    for name, seconds in spent.items():
        print(f"  {name}: median CPU {statistics.median(seconds) * 1e3:.0f} ms (min {min(seconds) * 1e3:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
