"""The Dask engine: a real ``dask scheduler`` and two ``dask worker`` processes on loopback, same results as local."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from process_helpers import alive, descendants

DASK = str(Path(sys.executable).with_name("dask"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A scheduler and two single-threaded workers, as a cluster's operator would start them."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    commands = [[DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
    commands += [
        [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--name", f"w{i}"]
        for i in range(2)
    ]
    procs, files = [], []
    try:
        for i, command in enumerate(commands):
            files.append((logs / f"{i}.log").open("w"))
            procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=files[-1]))
            if i == 0:
                time.sleep(1.0)  # let the scheduler listen before workers call it
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        for fh in files:
            fh.close()


def records(folder: Path) -> dict[str, dict]:
    out = {}
    for line in (folder / "results.jsonl").read_text("utf-8").splitlines():
        record = json.loads(line)
        out[record["project"]["id"]] = record
    return out


def summary(folder: Path) -> list[str]:
    return sorted((folder / "summary.csv").read_text("utf-8-sig").splitlines())


def test_sample_on_the_cluster_equals_the_local_engine(run, sample_dir, tmp_path, scheduler):
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert run("batch", sample_dir / "projects.gpkg", "-o", local, "--jobs", "1", "--lang", "en").exit_code == 0
    result = run("batch", sample_dir / "projects.gpkg", "-o", remote, "--engine", "dask", "--scheduler", scheduler,
                 "--chunk-size", "3", "--lang", "en")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip().endswith("13 projects: 2 pass, 5 conditional, 6 reject, 0 errors")
    assert records(remote) == records(local)
    assert summary(remote) == summary(local)


def test_generated_batch_on_the_cluster_equals_the_local_engine(run, manifest, sample_dir, tmp_path, scheduler):
    # 400 random sites over the county, a tenth of them 30 m roads, with emissions
    rng = np.random.default_rng(7)
    county = gpd.read_file(sample_dir / "layers" / "county.gpkg").to_crs(manifest.working_crs).geometry.iloc[0]
    minx, miny, maxx, maxy = county.bounds
    xy = np.column_stack([rng.uniform(minx, maxx, 1500), rng.uniform(miny, maxy, 1500)])
    xy = xy[shapely.contains_xy(county, xy[:, 0], xy[:, 1])][:400]
    sides = rng.uniform(50, 600, len(xy))
    geoms = shapely.box(xy[:, 0] - sides, xy[:, 1] - sides, xy[:, 0] + sides, xy[:, 1] + sides)
    geoms[:40] = shapely.linestrings(np.stack([xy[:40], xy[:40] + 2000.0], axis=1))
    frame = gpd.GeoDataFrame(
        {
            "id": [f"G{i:03d}" for i in range(len(xy))],
            "industry": rng.choice(["C2614", "G5920", "C3311", "E4812"], len(xy)),
            "width": np.where(np.arange(len(xy)) < 40, 30.0, np.nan),
            "emit_vocs": rng.uniform(0, 10, len(xy)),
            "emit_nox": rng.uniform(0, 10, len(xy)),
        },
        geometry=geoms,
        crs=manifest.working_crs,
    ).to_crs(4490)
    path = tmp_path / "generated.gpkg"
    pyogrio.write_dataframe(frame, path)
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert run("batch", path, "-o", local, "--jobs", "2", "--chunk-size", "50", "--lang", "en").exit_code == 0
    result = run("batch", path, "-o", remote, "--engine", "dask", "--scheduler", scheduler, "--chunk-size", "50",
                 "--lang", "en")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(records(remote)) == 400
    assert records(remote) == records(local)
    assert summary(remote) == summary(local)


# The cluster runs in this process here: distributed leaves sockets to the garbage collector.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_local_cluster_without_a_scheduler(run, sample_dir, tmp_path):
    out = tmp_path / "o"
    result = run("batch", sample_dir / "projects.gpkg", "-o", out, "--engine", "dask", "--jobs", "1", "--lang", "en")
    assert result.exit_code == 0, result.stderr
    assert len(records(out)) == 13


def test_unreachable_scheduler_is_one_clear_error(run, sample_dir, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    result = run("batch", sample_dir / "projects.gpkg", "-o", tmp_path / "o", "--engine", "dask",
                 "--scheduler", address)  # fmt: skip
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: --scheduler {address}: cannot reach the Dask scheduler (")


def test_scheduler_needs_the_dask_engine(run, sample_dir, tmp_path):
    result = run("batch", sample_dir / "projects.gpkg", "-o", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:1")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("Error: --scheduler is for --engine dask")


def worker_processes(pid: int) -> list[int]:
    """The local cluster's worker processes under ``pid`` (started by multiprocessing's spawn)."""
    return [p for p in descendants(pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("when", ["starting", "screening"])
def test_a_killed_batch_leaves_no_cluster_process(tmp_path, sample_projects, when):
    # The cluster's scheduler runs in the batch's process; its workers, each watching a pipe to it, end with it.
    frame = gpd.GeoDataFrame(pd.concat([sample_projects] * 60, ignore_index=True), crs=sample_projects.crs)
    frame["id"] = [f"X{i}" for i in range(len(frame))]
    path = tmp_path / "many.gpkg"
    pyogrio.write_dataframe(frame, path)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "threelines", "-q", "batch", str(path), "-o", str(out), "--engine", "dask",
               "--jobs", "2", "--chunk-size", "5"]  # fmt: skip
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(worker_processes(parent.pid)) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.02)
        if when == "screening":  # killed once some chunks are written
            results = out / "results.jsonl"
            while (not results.exists() or results.read_bytes().count(b"\n") < 100) and time.monotonic() < deadline:
                time.sleep(0.02)
        started = descendants(parent.pid)
        assert len(worker_processes(parent.pid)) == 2, "the batch ended before its workers could be seen"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        # A worker still starting ends when its start-up reaches the watch (a few seconds on a busy host).
        deadline = time.monotonic() + (5 if when == "screening" else 30)
        while any(alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [p for p in started if alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert not left
    finally:
        if parent.poll() is None:
            parent.kill()
