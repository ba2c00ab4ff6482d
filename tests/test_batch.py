"""threelines batch: every project of many inputs into a folder that a re-run resumes."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from threelines.batch.local import run_batch


def lines(folder):
    return [json.loads(line) for line in (folder / "results.jsonl").read_text("utf-8").splitlines()]


def test_batch_writes_results_and_summaries(run, tmp_path, sample_dir, contract):
    bad = sample_dir.parents[1] / "tests" / "data" / "bad" / "twopoints.csv"
    out = tmp_path / "out"
    result = run("batch", sample_dir / "projects.gpkg", sample_dir / "site" / "site.shp", bad, "-o", out)
    assert result.exit_code == 2  # one input could not be read
    assert result.stderr.strip().endswith("15 projects: 2 pass, 5 conditional, 7 reject, 1 error")
    records = lines(out)
    assert len(records) == 15
    screened = [r for r in records if "error" not in r]
    for record in screened:
        import jsonschema

        jsonschema.validate(record, contract)
        assert len(record["input_hash"]) == 32
    (error,) = [r for r in records if "error" in r]
    assert error["error"].endswith("parcel '1' ring '1' has 2 point(s); a polygon needs at least 3")
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert list(summary.columns) == [
        "id",
        "name",
        "source",
        "layer",
        "feature",
        "verdict",
        "reject",
        "conditional",
        "unresolved",
        "rules",
        "error",
    ]
    p07 = summary[summary.id == "P07"].iloc[0]
    assert (p07.verdict, p07.reject, p07.rules) == ("reject", 3, "heavy-industry-priority, YX-01, SY-01")
    workbook = pd.read_excel(out / "summary.xlsx", keep_default_na=False)
    assert workbook.shape == (15, 11)
    assert list(workbook.columns) == list(summary.columns)
    row = workbook[workbook.id == "P07"].iloc[0]
    assert (row.verdict, row.reject, row.conditional, row.rules) == ("reject", 3, p07.conditional, p07.rules)
    assert sorted(workbook.error.astype(str)) == sorted(summary.error.astype(str))


def test_rerun_resumes_and_changed_rules_rescreen(tmp_path, sample_dir, manifest, ruleset):
    out = tmp_path / "out"
    first = run_batch([str(sample_dir / "projects.gpkg")], out, manifest, ruleset)
    assert (first.screened, first.resumed) == (13, 0)
    again = run_batch([str(sample_dir / "projects.gpkg")], out, manifest, ruleset)
    assert (again.screened, again.resumed) == (0, 13)
    assert len(lines(out)) == 13
    # an interrupted run leaves a cut line: it is ignored and its project screened again
    text = (out / "results.jsonl").read_text("utf-8").splitlines()
    (out / "results.jsonl").write_text("\n".join(text[:-1]) + "\n" + text[-1][:40], encoding="utf-8")
    resumed = run_batch([str(sample_dir / "projects.gpkg")], out, manifest, ruleset)
    assert (resumed.screened, resumed.resumed) == (1, 12)
    # the cut line is set aside, and every line left is whole
    text = (out / "results.jsonl").read_text("utf-8").splitlines()
    assert len(text) == 13
    assert sum(1 for line in text if line.startswith("{") and line.endswith("}")) == 13
    assert len((out / "results.jsonl.damaged").read_text("utf-8").splitlines()) == 1
    # changed rules: every project is screened again
    from threelines.rules import load_rules

    shutil.copytree(sample_dir, tmp_path / "s")
    rules_path = tmp_path / "s" / "rules.yaml"
    rules_path.write_text(rules_path.read_text("utf-8").replace("distance_m: 500", "distance_m: 800"), encoding="utf-8")
    changed = run_batch([str(sample_dir / "projects.gpkg")], out, manifest, load_rules(rules_path, manifest))
    assert (changed.screened, changed.resumed) == (13, 0)


def test_workers_give_the_same_results(tmp_path, sample_dir, manifest, ruleset):
    one = run_batch([str(sample_dir / "projects.gpkg")], tmp_path / "one", manifest, ruleset, jobs=1, chunk_size=4)
    two = run_batch([str(sample_dir / "projects.gpkg")], tmp_path / "two", manifest, ruleset, jobs=2, chunk_size=4)
    assert one.verdicts == two.verdicts
    assert lines(tmp_path / "one") == lines(tmp_path / "two")


def test_foreign_output_folder_is_refused(run, tmp_path, sample_dir):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    result = run("batch", sample_dir / "projects" / "P01.geojson", "-o", out)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {out}: exists and is not a batch output; give another -o, or --overwrite\n"
    assert (out / "notes.txt").read_text("utf-8") == "keep me"


@pytest.mark.parametrize(("fail_on", "code"), [("reject", 1), ("conditional", 1), (None, 0)])
def test_fail_on(run, tmp_path, sample_dir, fail_on, code):
    args = ["-q", "batch", sample_dir / "projects" / "P04.geojson", "-o", tmp_path / "o"]
    if fail_on:
        args += ["--fail-on", fail_on]
    expected = 0 if fail_on == "reject" else code  # P04 is conditional
    assert run(*args).exit_code == expected


def test_batch_results_equal_screen_results(run, tmp_path, sample_dir):
    out = tmp_path / "out"
    assert run("batch", sample_dir / "projects.gpkg", "-o", out).exit_code == 0
    batch = {r["project"]["id"]: r for r in lines(out)}
    screened = [
        json.loads(line) for line in run("screen", sample_dir / "projects.gpkg", "--format", "json").stdout.splitlines()
    ]
    for doc in screened:
        assert doc.pop("provenance")["input"]["path"].endswith("projects.gpkg")
        record = dict(batch[doc["project"]["id"]])
        assert (record.pop("source"), record.pop("layer")) == (str(sample_dir / "projects.gpkg"), None)
        assert record.pop("feature") == int(doc["project"]["id"][1:]) - 1
        record.pop("input_hash")
        assert record == doc


def test_large_files_are_read_in_pieces_with_the_same_results(tmp_path, sample_dir, manifest, ruleset, sample_projects):
    import pyogrio

    # without an id column the default ids count features through the whole file, piece after piece
    path = tmp_path / "no_ids.gpkg"
    pyogrio.write_dataframe(sample_projects.drop(columns=["id"]), path)
    whole = run_batch([str(path)], tmp_path / "whole", manifest, ruleset)
    pieces = run_batch([str(path)], tmp_path / "pieces", manifest, ruleset, piece_size=5, chunk_size=2, jobs=2)
    assert (whole.screened, pieces.screened) == (13, 13)
    assert whole.verdicts == pieces.verdicts
    by_id = {r["project"]["id"]: r for r in lines(tmp_path / "pieces")}
    assert sorted(by_id) == sorted(f"no_ids-{i}" for i in range(1, 14))
    assert {r["project"]["id"]: r for r in lines(tmp_path / "whole")} == by_id
    # a re-run resumes piece by piece
    again = run_batch([str(path)], tmp_path / "pieces", manifest, ruleset, piece_size=5)
    assert (again.screened, again.resumed) == (0, 13)


def test_a_piece_that_cannot_be_read_is_one_error(tmp_path, manifest, ruleset, sample_projects, monkeypatch):
    import pyogrio

    from threelines.input import vector_files

    path = tmp_path / "p.gpkg"
    pyogrio.write_dataframe(sample_projects, path)
    real = vector_files.read_vector

    def failing(text, layer, label, encoding, *, skip=0, limit=None):
        if skip >= 10:
            raise vector_files.FootprintError(f"{label}: cannot read it (disk error)")
        return real(text, layer, label, encoding, skip=skip, limit=limit)

    monkeypatch.setattr(vector_files, "read_vector", failing)
    monkeypatch.setattr(vector_files, "_plain_geopackage_file", lambda *args: None)  # read by GDAL, piece by piece
    result = run_batch([str(path)], tmp_path / "out", manifest, ruleset, piece_size=5)
    assert (result.screened, result.errors) == (10, 1)
    (error,) = [r for r in lines(tmp_path / "out") if "error" in r]
    assert error["error"] == f"{path}: cannot read it (disk error)"


def test_batch_writes_one_report_per_project(run, tmp_path, sample_dir):
    out, reports = tmp_path / "out", tmp_path / "reports"
    args = ("batch", sample_dir / "projects.gpkg", "-o", out, "--reports", reports, "--report-format", "json")
    assert run(*args, "--lang", "en").exit_code == 0
    files = sorted(p.name for p in reports.iterdir())
    assert [name[:-14] for name in files] == [f"projects-P{i:02d}" for i in range(1, 14)]  # -HASH.json after
    (p02_path,) = reports.glob("projects-P02-*.json")
    p02 = json.loads(p02_path.read_text("utf-8"))
    assert p02["verdict"] == "reject"
    assert p02["provenance"]["input"]["path"] == str((sample_dir / "projects.gpkg").resolve())
    by_id = {r["project"]["id"]: r for r in lines(out)}
    assert by_id["P02"]["report"] == str(p02_path)
    provenance = json.loads((out / "provenance.json").read_text("utf-8"))
    assert provenance["inputs"] == [p02["provenance"]["input"]]
    assert provenance["layers"] == p02["provenance"]["layers"]


def test_batch_markdown_reports_follow_the_language(run, tmp_path, sample_dir):
    reports = tmp_path / "r"
    assert run("batch", sample_dir / "projects" / "P02.geojson", "-o", tmp_path / "o", "--reports", reports,
               "--report-format", "markdown", "--lang", "zh").exit_code == 0  # fmt: skip
    (path,) = reports.glob("P02-P02-*.md")
    text = path.read_text("utf-8")
    assert "**筛查结论: 不予准入**" in text


def test_quiet_and_verbose_long_forms_after_batch(run, tmp_path, sample_dir):
    p04 = sample_dir / "projects" / "P04.geojson"
    quiet = run("batch", p04, "-o", tmp_path / "q", "--quiet")
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    assert (tmp_path / "q" / "summary.csv").read_text(encoding="utf-8-sig").count("\n") == 2
    loud = run("batch", p04, "-o", tmp_path / "v", "--verbose", "--verbose")
    assert loud.exit_code == 0
    assert "threelines: DEBUG: " in loud.stderr
    assert loud.stderr.endswith("1 projects: 0 pass, 1 conditional, 0 reject, 0 errors\n")


def test_errors_reach_stderr_even_when_quiet(run, tmp_path, sample_dir, monkeypatch):
    bad = tmp_path / "broken.geojson"
    bad.write_text("{not json", encoding="utf-8")
    quiet = run("-q", "batch", bad, "-o", tmp_path / "q")
    assert quiet.exit_code == 2
    # one line naming the file and what to give instead; -q silences progress, not errors
    assert quiet.stderr.splitlines() == [
        f"Error: {bad}: cannot read it as a vector file (its content is not in any vector format GDAL reads, whatever "
        "its name ends with); give a Shapefile, GeoJSON, GeoPackage, KML, DXF, FlatGeobuf, GeoParquet or a "
        "corner-coordinate table"
    ]
    assert [r["error"] for r in lines(tmp_path / "q")] == [quiet.stderr.removeprefix("Error: ").rstrip("\n")]
    # past the first few, the rest are counted
    monkeypatch.setattr("threelines.batch.local.BATCH_ERRORS_SHOWN", 1)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("broken1.geojson", "broken2.geojson", "broken3.geojson"):
        (folder / name).write_text("{not json", encoding="utf-8")
    shutil.copy(sample_dir / "projects" / "P04.geojson", folder)
    loud = run("batch", folder, "-o", tmp_path / "o", "-q")
    assert loud.exit_code == 2
    said = loud.stderr.splitlines()
    assert len(said) == 2
    assert said[0].startswith(f"Error: {folder / 'broken1.geojson'}: ")
    assert (
        said[1]
        == f"Error: 2 more projects or inputs could not be screened; every error is in {tmp_path / 'o' / 'results.jsonl'}"
    )
