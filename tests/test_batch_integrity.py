"""Batch integrity: no project lost or doubled, whatever one project, one file or the disk does."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from process_helpers import alive, descendants
from threelines.batch import local as batch_module
from threelines.batch import results as results_module
from threelines.batch.local import run_batch
from threelines.batch.shared import SharedSetup
from threelines.engine import screen as engine
from threelines.engine.verdict import Texts

BAD = Path(__file__).parent / "data" / "bad"


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text("utf-8").splitlines()]


def summary(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "summary.csv", keep_default_na=False, dtype=str)


def copies(sample_projects, ids, pid: str = "P01", **columns) -> gpd.GeoDataFrame:
    """Copies of one sample project, one per id (other columns as given)."""
    row = sample_projects[sample_projects.id == pid]
    frame = gpd.GeoDataFrame(pd.concat([row] * len(ids), ignore_index=True), crs=sample_projects.crs)
    frame["id"] = list(ids)
    for name, values in columns.items():
        frame[name] = values
    return frame


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- Item 1: one project's failure is that project's error, never the run's --------------------


@pytest.mark.parametrize("jobs", ["1", "2"])  # in this process, and in forked workers (which keep the patch)
def test_a_project_whose_screening_raises_is_its_own_error(run, tmp_path, sample_dir, monkeypatch, jobs):
    real = engine.screen_checked

    def failing(projects, *args, **kwargs):
        if any(p["id"] == "P05" for p in projects.attrs):
            raise ValueError("cannot convert float NaN to integer")
        return real(projects, *args, **kwargs)

    monkeypatch.setattr(engine, "screen_checked", failing)
    out = tmp_path / "out"
    result = run("batch", sample_dir / "projects.gpkg", "-o", out, "--jobs", jobs, "--chunk-size", "5")
    assert result.exit_code == 2
    no_traceback(result)
    assert result.stderr.splitlines()[-1] == "13 projects: 2 pass, 5 conditional, 5 reject, 1 error"
    by_id = {r["project"]["id"]: r for r in records(out)}
    assert len(by_id) == 13 == len(records(out))
    assert by_id["P05"]["error"] == (
        f"{sample_dir / 'projects.gpkg'}: project 'P05': could not be screened "
        "(ValueError: cannot convert float NaN to integer)"
    )
    assert all(r["verdict"] in ("pass", "conditional", "reject") for pid, r in by_id.items() if pid != "P05")
    rows = summary(out)
    assert len(rows) == 13
    assert rows[rows.id == "P05"].error.item().endswith("(ValueError: cannot convert float NaN to integer)")
    # the failing project is tried again on a rerun, and its record replaced
    monkeypatch.setattr(engine, "screen_checked", real)
    again = run("batch", sample_dir / "projects.gpkg", "-o", out, "--jobs", "1")
    assert again.exit_code == 0
    assert again.stderr.splitlines()[-1].startswith(
        "13 projects: 2 pass, 5 conditional, 6 reject, 0 errors; 12 already"
    )
    assert sorted(r["project"]["id"] for r in records(out)) == [f"P{i:02d}" for i in range(1, 14)]


def test_a_verdict_that_cannot_be_written_down_is_its_projects_error(run, tmp_path, sample_dir, monkeypatch):
    real = engine.screen_checked

    def unwritable(message):
        raise KeyError(message)

    def screened(projects, *args, **kwargs):
        outcomes = real(projects, *args, **kwargs)
        for verdict in outcomes:
            if verdict.project["id"] == "P05":  # its first rule text fails to render
                first = dataclasses.replace(verdict.triggers[0], texts=Texts(lambda: unwritable("limit")))
                verdict.triggers = [first, *verdict.triggers[1:]]
        return outcomes

    monkeypatch.setattr(engine, "screen_checked", screened)
    out = tmp_path / "out"
    result = run("batch", sample_dir / "projects.gpkg", "-o", out, "--jobs", "1")
    assert result.exit_code == 2
    no_traceback(result)
    assert result.stderr.splitlines()[-1] == "13 projects: 2 pass, 5 conditional, 5 reject, 1 error"
    by_id = {r["project"]["id"]: r for r in records(out)}
    assert by_id["P05"]["error"] == (
        f"{sample_dir / 'projects.gpkg'}: project 'P05': could not be screened (KeyError: 'limit')"
    )
    assert all("verdict" in r for pid, r in by_id.items() if pid != "P05")


def test_a_worker_that_dies_stops_the_run_with_one_line_and_a_rerun_completes(run, tmp_path, sample_dir, monkeypatch):
    real = engine.screen_checked

    def dying(projects, *args, **kwargs):
        if any(p["id"] == "P05" for p in projects.attrs):
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
        return real(projects, *args, **kwargs)

    monkeypatch.setattr(engine, "screen_checked", dying)
    out = tmp_path / "out"
    result = run("batch", sample_dir / "projects.gpkg", "-o", out, "--jobs", "2", "--chunk-size", "3")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: a worker process ended abruptly (killed, out of memory or crashed); the results so far are kept: "
        "run again to resume (with --jobs 1 to see which project it was)"
    )
    monkeypatch.setattr(engine, "screen_checked", real)
    assert run("batch", sample_dir / "projects.gpkg", "-o", out, "--jobs", "2", "--chunk-size", "3").exit_code == 0
    assert sorted(r["project"]["id"] for r in records(out)) == [f"P{i:02d}" for i in range(1, 14)]


def test_a_report_that_cannot_be_written_is_that_projects_error(tmp_path, sample_dir, manifest, ruleset, monkeypatch):
    from threelines.report import formats

    real = formats.write_report

    def failing(screening, *args, **kwargs):
        if screening.verdicts[0].project["id"] == "P03":
            raise OSError(errno.ENAMETOOLONG, "File name too long")
        return real(screening, *args, **kwargs)

    monkeypatch.setattr(formats, "write_report", failing)
    result = run_batch(
        [str(sample_dir / "projects.gpkg")], tmp_path / "out", manifest, ruleset, reports=tmp_path / "r",
        reports_format="json",
    )  # fmt: skip
    assert (result.screened, result.errors) == (13, 0)
    by_id = {r["project"]["id"]: r for r in records(tmp_path / "out")}
    assert by_id["P03"]["report_error"].endswith("cannot write the report (OSError: [Errno 36] File name too long)")
    assert "report" not in by_id["P03"]
    assert len(list((tmp_path / "r").iterdir())) == 12


# -- Item 3: a record per feature, keyed by where it came from -------------------------------------


def test_long_lookalike_and_shared_ids_each_get_a_record_a_row_and_a_report(run, tmp_path, sample_projects):
    ids = ["x" * 300, "A/1", "A_1", "A 1", "地块1", "地块1", "地块1"]
    path = tmp_path / "ids.geojson"
    pyogrio.write_dataframe(copies(sample_projects, ids), path)
    out, reports = tmp_path / "out", tmp_path / "reports"
    result = run("batch", path, "-o", out, "--reports", reports, "--report-format", "json")
    assert result.exit_code == 0
    no_traceback(result)
    assert "threelines: WARNING: project id '地块1' is used by 3 projects; each has its own record" in result.stderr
    got = records(out)
    assert [r["project"]["id"] for r in got] == ids
    assert [(r["source"], r["layer"], r["feature"]) for r in got] == [(str(path), None, i) for i in range(7)]
    assert len(summary(out)) == 7
    assert list(summary(out).feature) == [str(i) for i in range(7)]
    files = sorted(reports.iterdir())
    assert len(files) == 7
    assert sorted(Path(r["report"]) for r in got) == files
    assert max(len(p.name.encode()) for p in files) <= 255
    assert {json.loads(p.read_text("utf-8"))["project"]["id"] for p in files} == set(ids)


def test_equal_names_in_a_folder_and_unreadable_files_stay_apart(run, tmp_path, sample_projects):
    folder = tmp_path / "in"
    for sub, pid in (("a", "P01"), ("b", "P02")):
        (folder / sub).mkdir(parents=True)
        pyogrio.write_dataframe(copies(sample_projects, ["site"], pid), folder / sub / "site.geojson")
    (folder / "broken1.geojson").write_text("{not json", encoding="utf-8")
    (folder / "broken2.geojson").write_text("{nor this", encoding="utf-8")
    out, reports = tmp_path / "out", tmp_path / "reports"
    result = run("batch", folder, "-o", out, "--reports", reports, "--report-format", "json")
    assert result.exit_code == 2
    no_traceback(result)
    assert result.stderr.splitlines()[-1] == "4 projects: 1 pass, 0 conditional, 1 reject, 2 errors"
    got = sorted(records(out), key=lambda r: r["source"])
    assert [r["source"] for r in got] == [
        str(folder / "a" / "site.geojson"), str(folder / "b" / "site.geojson"),
        str(folder / "broken1.geojson"), str(folder / "broken2.geojson"),
    ]  # fmt: skip
    assert [r.get("verdict") for r in got] == ["pass", "reject", None, None]
    assert [r["feature"] for r in got] == [0, 0, None, None]
    assert got[2]["error"].startswith(f"{folder / 'broken1.geojson'}: cannot read it")
    assert sorted(summary(out).source) == [r["source"] for r in got]
    assert len({r["report"] for r in got[:2]}) == 2
    assert len(list(reports.iterdir())) == 2
    # a rerun tries the errors again and replaces them: nothing grows
    for _ in range(2):
        assert run("batch", folder, "-o", out).exit_code == 2
        assert len(records(out)) == 4
        assert len(summary(out)) == 4
    # a file mended: its error gives way to its verdict
    pyogrio.write_dataframe(copies(sample_projects, ["P04"], "P04"), folder / "broken1.geojson", driver="GeoJSON")
    mended = run("batch", folder, "-o", out)
    assert mended.stderr.splitlines()[-1].startswith("4 projects: 1 pass, 1 conditional, 1 reject, 1 error")
    assert sorted(r.get("verdict", "error") for r in records(out)) == ["conditional", "error", "pass", "reject"]


def test_a_project_in_two_inputs_gets_a_record_for_each(tmp_path, sample_dir, manifest, ruleset):
    other = tmp_path / "copy"
    other.mkdir()
    shutil.copy(sample_dir / "projects" / "P01.geojson", other / "P01.geojson")
    inputs = [str(sample_dir / "projects" / "P01.geojson"), str(other / "P01.geojson")]
    result = run_batch(inputs, tmp_path / "out", manifest, ruleset)
    assert (result.screened, result.resumed) == (2, 0)
    assert [r["source"] for r in records(tmp_path / "out")] == inputs
    # the same input given twice is read once
    again = run_batch([*inputs, inputs[0]], tmp_path / "out", manifest, ruleset)
    assert (again.screened, again.resumed) == (0, 2)
    assert len(records(tmp_path / "out")) == 2
    # a folder and a file in it name the same place: still one record
    both = run_batch([str(other), str(other / "P01.geojson")], tmp_path / "out", manifest, ruleset)
    assert (both.screened, both.resumed) == (0, 2)  # both found done: one record for the one place
    assert len(records(tmp_path / "out")) == 2


def test_a_file_reached_twice_in_one_run_is_screened_once(tmp_path, sample_dir, manifest, ruleset):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(sample_dir / "projects" / "P01.geojson", folder / "P01.geojson")
    for n, inputs in enumerate(([folder, folder / "P01.geojson"], [folder / "P01.geojson", folder])):
        result = run_batch([str(i) for i in inputs], tmp_path / f"out{n}", manifest, ruleset)
        assert (result.screened, result.resumed) == (1, 1)  # the later input finds it screened by the earlier
        assert len(records(tmp_path / f"out{n}")) == 1


def test_the_collector_is_left_as_the_caller_had_it(tmp_path, sample_dir, manifest, ruleset):
    from threelines.collector import collector_held

    given = [str(sample_dir / "projects" / "P01.geojson"), str(tmp_path / "missing.geojson")]  # one read fails
    enabled = gc.isenabled()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            result = run_batch(given, tmp_path / f"out-{state}", manifest, ruleset)
            assert (result.screened, result.errors) == (1, 1)
            assert gc.isenabled() is state
        gc.enable()
        with contextlib.suppress(OSError), collector_held():  # a step that fails
            held = gc.isenabled()
            raise OSError("a full disk")
        assert (held, gc.isenabled()) == (False, True)
    finally:
        (gc.enable if enabled else gc.disable)()


def test_errors_of_features_are_keyed_and_replaced_on_a_rerun(tmp_path, sample_projects, manifest, ruleset):
    path = tmp_path / "mixed.geojson"
    industries = ["G5920", "X9999", "G5920", "X9999"]  # two bad codes
    pyogrio.write_dataframe(copies(sample_projects, ["a", "b", "c", "d"], industry=industries), path)
    for _ in range(3):
        result = run_batch([str(path)], tmp_path / "out", manifest, ruleset)
        assert (sum(result.verdicts.values()), result.errors) == (2, 2)
        got = records(tmp_path / "out")
        assert sorted((r["feature"], "error" in r) for r in got) == [(0, False), (1, True), (2, False), (3, True)]


# -- Item 4: resume robustness ----------------------------------------------------------------------


def test_torn_and_foreign_lines_are_set_aside_and_their_projects_screened_again(run, tmp_path, sample_dir):
    out = tmp_path / "out"
    assert run("batch", sample_dir / "projects.gpkg", "-o", out).exit_code == 0
    raw = (out / "results.jsonl").read_bytes().splitlines(keepends=True)
    torn = raw[12][: raw[12].index("湿".encode()) + 1] if "湿".encode() in raw[12] else raw[12][:41] + b"\xe5\x9c"
    lines = [*raw[:4], b"[]\n", *raw[5:8], b'{"input_hash": "abc"}\n', *raw[8:12], torn]
    (out / "results.jsonl").write_bytes(b"".join(lines))
    result = run("batch", sample_dir / "projects.gpkg", "-o", out)
    assert result.exit_code == 0
    no_traceback(result)
    warning = (
        f"threelines: WARNING: {out / 'results.jsonl'}: 3 lines cut short or not a results record; "
        "moved to results.jsonl.damaged, and their projects are screened again"
    )
    assert warning in result.stderr.splitlines()
    assert result.stderr.splitlines()[-1].endswith("; 11 already screened, not screened again")
    assert sorted(r["project"]["id"] for r in records(out)) == [f"P{i:02d}" for i in range(1, 14)]
    assert (out / "results.jsonl.damaged").read_bytes() == b"[]\n" + b'{"input_hash": "abc"}\n' + torn + b"\n"
    assert len(summary(out)) == 13
    # clean now: a rerun says nothing of damage
    again = run("batch", sample_dir / "projects.gpkg", "-o", out)
    assert "damaged" not in again.stderr


def test_a_second_batch_on_the_same_folder_is_refused(run, tmp_path, sample_dir):
    out = tmp_path / "out"
    out.mkdir()
    with (out / ".threelines.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run("batch", sample_dir / "projects" / "P01.geojson", "-o", out)
        assert result.exit_code == 2
        assert result.stderr == (
            f"Error: {out}: another batch is writing into this folder (it holds .threelines.lock); "
            "wait for it to finish, or give another -o\n"
        )
        assert not (out / "results.jsonl").exists()
    # released: the folder (holding only the lock file) is a batch output to write into
    assert run("batch", sample_dir / "projects" / "P01.geojson", "-o", out).exit_code == 0
    assert len(records(out)) == 1


@given(st.lists(st.tuples(st.binary(max_size=12), st.tuples(st.integers())), max_size=12), st.data())
def test_records_handed_back_as_one_text_give_each_line_and_row(pairs, data):
    records = results_module.Records.of(pairs)
    assert (records.text, records.rows, len(records)) == (
        b"".join(p[0] for p in pairs),
        [p[1] for p in pairs],
        len(pairs),
    )
    positions = data.draw(st.lists(st.integers(0, len(pairs) - 1))) if pairs else []
    assert records.lines(positions) == [pairs[i][0] for i in positions]


def test_a_full_disk_stops_cleanly_and_a_rerun_completes(run, tmp_path, sample_dir, monkeypatch):
    real = results_module.write_all
    calls = Counter()

    def filling(fd, data):
        calls["writes"] += 1
        if calls["writes"] == 4:  # half a chunk reaches the disk, then it is full
            real(fd, data[: len(data) // 2 + 1])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(results_module, "write_all", filling)
    out = tmp_path / "out"
    result = run("batch", sample_dir / "projects.gpkg", "-o", out, "--chunk-size", "2", "--jobs", "1")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {out}: cannot write the batch output (No space left on device); free some space or fix the "
        "folder, then run again: the batch resumes where it stopped\n"
    )
    assert 6 <= len((out / "results.jsonl").read_bytes().splitlines()) <= 8
    monkeypatch.setattr(results_module, "write_all", real)
    again = run("batch", sample_dir / "projects.gpkg", "-o", out, "--chunk-size", "2", "--jobs", "1")
    assert again.exit_code == 0
    assert "moved to results.jsonl.damaged" in again.stderr
    assert sorted(r["project"]["id"] for r in records(out)) == [f"P{i:02d}" for i in range(1, 14)]
    assert len(summary(out)) == 13
    assert not (out / ".threelines-index.sqlite").exists()


# -- Item 5: no orphans ---------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_end_with_a_killed_parent_and_a_rerun_completes(tmp_path, sample_projects, manifest, ruleset):
    frame = copies(sample_projects, [f"X{i}" for i in range(780)], "P01")
    frame["geometry"] = list(sample_projects.geometry) * 60  # the thirteen footprints, sixty times over
    path = tmp_path / "many.gpkg"
    pyogrio.write_dataframe(frame, path)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "threelines", "-q", "batch", str(path), "-o", str(out), "--jobs", "2",
               "--chunk-size", "5"]  # fmt: skip
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        # The loader (which reads the layers) and the two workers forked from it.
        while len(workers := descendants(parent.pid)) < 3 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.02)
        assert len(workers) >= 3, "the batch ended before its workers could be seen"
        results = out / "results.jsonl"
        while (not results.exists() or results.read_bytes().count(b"\n") < 200) and time.monotonic() < deadline:
            time.sleep(0.02)  # killed once some chunks are written (the 60 lines without a width come first)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if alive(w)]
    finally:
        if parent.poll() is None:
            parent.kill()
    assert (out / ".threelines-index.sqlite").exists()  # the killed run's index is in its output, not in a temp folder
    result = run_batch([str(path)], out, manifest, ruleset, jobs=2, chunk_size=50)
    assert result.resumed > 0
    assert result.screened + result.resumed + result.errors == 780
    assert Counter(r["project"]["id"] for r in records(out)) == Counter(f"X{i}" for i in range(780))
    assert not (out / ".threelines-index.sqlite").exists()


# -- Item 6: -q and -v after the subcommand -----------------------------------------------------------


def test_quiet_and_verbose_work_after_the_subcommand(run, tmp_path, sample_dir):
    p04 = sample_dir / "projects" / "P04.geojson"
    loud = run("batch", p04, "-o", tmp_path / "a")
    assert loud.stderr == "1 projects: 0 pass, 1 conditional, 0 reject, 0 errors\n"
    for args in (("batch", p04, "-o", tmp_path / "b", "-q"), ("-q", "batch", p04, "-o", tmp_path / "c")):
        quiet = run(*args)
        assert (quiet.exit_code, quiet.stderr) == (0, "")
    p01 = sample_dir / "projects" / "P01.geojson"
    said = f"threelines: INFO: {p01}: converted from gcj02 web-map coordinates to WGS84"
    assert said not in run("screen", p01, "--crs", "gcj02").stderr
    assert said in run("screen", p01, "--crs", "gcj02", "-v").stderr.splitlines()
    assert said in run("-v", "screen", p01, "--crs", "gcj02").stderr.splitlines()
    assert run("screen", p01, "--crs", "gcj02", "-v", "-q").stderr == ""
    checked = run("rules", "check", "-q")
    assert checked.exit_code == 0
    assert checked.stdout.endswith("no problems\n")


def test_the_summary_rows_are_written_as_each_batch_comes(tmp_path):
    from threelines.batch.summary import SUMMARY_COLUMNS, SummaryStream

    seen = []
    arrived = threading.Event()
    row = tuple(f"v{i}" for i in range(len(SUMMARY_COLUMNS)))
    with SummaryStream(
        tmp_path / "s.csv", tmp_path / "s.xlsx", lambda rows: (seen.append(len(rows)), arrived.set())
    ) as stream:
        stream.write([row] * 3)
        assert arrived.wait(10)  # written before the run's end, not held for more rows
        stream.finish()
    assert seen == [3]
    assert (tmp_path / "s.csv").read_text(encoding="utf-8-sig").count("v0") == 3


def test_the_summary_tables_are_written_while_the_records_come(run, tmp_path, sample_dir, monkeypatch):
    def at_the_end(*args):
        raise AssertionError("the tables were written again at the end")

    monkeypatch.setattr(batch_module, "write_summaries", at_the_end)
    out = tmp_path / "out"
    assert run("batch", sample_dir / "projects.gpkg", "-o", out, "--jobs", "1", "--chunk-size", "5").exit_code == 0
    assert sorted(summary(out).id) == [f"P{i:02d}" for i in range(1, 14)]
    assert sorted(p.name for p in out.iterdir()) == [
        ".threelines.lock", "provenance.json", "results.jsonl", "summary.csv", "summary.xlsx",
    ]  # fmt: skip
    # a rerun that only adds records (here: none) keeps writing them as they come, after the earlier ones
    again = run("batch", sample_dir / "projects.gpkg", "-o", out, "--jobs", "1")
    assert again.exit_code == 0
    assert len(summary(out)) == 13


def test_the_hashing_thread_never_uses_proj(tmp_path, manifest, ruleset, monkeypatch):
    """A thread that used PROJ frees its SQLite handles as it ends, under SQLite's lock: a worker forked then hangs.

    The run's hashes are taken in a thread of their own, while workers may be forked: the working CRS's
    WKT is written in the thread that starts it.
    """
    import threading

    from pyproj import CRS

    writers = []
    to_wkt = CRS.to_wkt

    def recorded(self, *args, **kwargs):
        writers.append(threading.current_thread())
        return to_wkt(self, *args, **kwargs)

    monkeypatch.setattr(CRS, "to_wkt", recorded)
    setup = SharedSetup(tmp_path, manifest, ruleset, {}, [], None)
    shared = setup.shared()
    assert shared["crs"] == to_wkt(manifest.working_crs)
    assert writers == [threading.main_thread()]
    assert not [t for t in threading.enumerate() if t.name.startswith("threelines-hash")]  # ended, not ending
