"""``verify`` catches tampered reports, trusts no path inside them, and refuses bad ones with one line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from threelines.report.provenance import dataset_sha256

HINT = "give a report of screen --format json or --format html, or a batch's results.jsonl"


@pytest.fixture(scope="module")
def screened(tmp_path_factory, sample_dir):
    """The sample copied, its 13 projects screened into one JSON report, P02 alone into JSON and HTML."""
    from click.testing import CliRunner

    from threelines.cli.main import cli

    root = tmp_path_factory.mktemp("verify")
    shutil.copytree(sample_dir, root / "s")
    s = root / "s"
    args = ["--layers", str(s / "layers.yaml"), "--rules", str(s / "rules.yaml")]
    runner = CliRunner()
    for source, out in ((s / "projects.gpkg", "all.json"), (s / "projects" / "P02.geojson", "p02.json"),
                        (s / "projects" / "P02.geojson", "p02.html")):  # fmt: skip
        result = runner.invoke(cli, ["screen", str(source), *args, "-o", str(root / out)], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
    return root


def edited(screened: Path, tmp_path: Path, name: str, change) -> Path:
    """A copy of a report with ``change`` applied to its records (a list, or the one object)."""
    records = json.loads((screened / name).read_text("utf-8"))
    records = change(records) or records
    out = tmp_path / name
    out.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return out


def one_line(result) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    return result.stderr.strip()


# -- Item 18: any difference exits 1 -------------------------------------------------------------


def test_untouched_report_verifies(run, screened):
    result = run("verify", screened / "all.json")
    assert result.exit_code == 0, result.stdout
    assert len(result.stdout.splitlines()) == 13
    assert one_line(result) == f"{screened / 'all.json'}: unchanged (13 project(s))"


def test_the_report_records_its_project_count(screened):
    records = json.loads((screened / "all.json").read_text("utf-8"))
    assert [r["provenance"]["project_count"] for r in records] == [13] * 13
    assert json.loads((screened / "p02.json").read_text("utf-8"))["provenance"]["project_count"] == 1


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_report_exits_2(run, tmp_path, content):
    report = tmp_path / "r.json"
    report.write_text(content, encoding="utf-8")
    result = run("verify", report)
    assert result.exit_code == 2
    assert one_line(result) == f"Error: {report}: is empty; {HINT}"


def test_report_without_projects_exits_2(run, tmp_path):
    report = tmp_path / "r.json"
    report.write_text("[]\n", encoding="utf-8")
    result = run("verify", report)
    assert result.exit_code == 2
    assert one_line(result) == f"Error: {report}: holds no projects; {HINT}"


def test_a_deleted_project_is_missing(run, screened, tmp_path):
    report = edited(screened, tmp_path, "all.json", lambda r: [x for x in r if x["project"]["id"] != "P06"])
    result = run("verify", report)
    assert result.exit_code == 1
    assert [line for line in result.stdout.splitlines() if "unchanged" not in line] == [
        "P06: missing from the report (screened now: conditional)"
    ]
    assert one_line(result) == f"{report}: 1 of 13 changed"


def test_a_deleted_project_with_its_count_edited_too_is_missing(run, screened, tmp_path):
    def drop(records):
        for r in records:
            r["provenance"]["project_count"] = 12
        return [x for x in records if x["project"]["id"] != "P06"]

    result = run("verify", edited(screened, tmp_path, "all.json", drop))
    assert result.exit_code == 1
    assert "P06: missing from the report (screened now: conditional)" in result.stdout.splitlines()


def test_a_count_that_disagrees_with_the_projects(run, screened, tmp_path):
    def count(records):
        for r in records:
            r["provenance"]["project_count"] = 14

    result = run("verify", edited(screened, tmp_path, "all.json", count))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "the report records 14 project(s) and holds 13"


def test_an_edited_industry(run, screened, tmp_path):
    def industry(records):
        next(r for r in records if r["project"]["id"] == "P05")["project"]["industry"] = "G5920"

    result = run("verify", edited(screened, tmp_path, "all.json", industry))
    assert result.exit_code == 1
    assert [line for line in result.stdout.splitlines() if "unchanged" not in line] == ["P05: industry G5920 -> C2614"]


def test_an_edited_area(run, screened, tmp_path):
    def area(record):
        record["project"]["area_m2"] = 100.0

    report = edited(screened, tmp_path, "p02.json", area)
    result = run("verify", report)
    assert result.exit_code == 1
    assert result.stdout == "P02: area_m2 100.0 -> 157475.12\n"
    assert one_line(result) == f"{report}: 1 of 1 changed"


def test_an_edited_verdict_and_trigger(run, screened, tmp_path):
    def verdict(record):
        record["verdict"] = "pass"
        record["triggers"] = []

    result = run("verify", edited(screened, tmp_path, "p02.json", verdict))
    assert result.exit_code == 1
    assert result.stdout == (
        "P02: verdict pass -> reject; trigger YX-02 (conditional, feature ZH36012110016) is new; "
        "trigger redline-overlap (reject, feature HX360121010) is new\n"
    )


def test_every_sha256_edited(run, screened, tmp_path):
    def zeros(record):
        p = record["provenance"]
        for entry in [p["manifest"], p["input"], *p["layers"], *p["rules"]]:
            entry["sha256"] = "0" * 64

    report = edited(screened, tmp_path, "p02.json", zeros)
    result = run("verify", report)
    assert result.exit_code == 1
    s = screened / "s"
    lines = result.stdout.splitlines()
    assert lines == [
        "P02: not screened again: a file it names changed",
        f"input changed: manifest {s / 'layers.yaml'}: changed (sha256 000000000000 -> "
        f"{dataset_sha256(s / 'layers.yaml')[:12]})",
        f"input changed: rules {s / 'rules.yaml'}: changed (sha256 000000000000 -> "
        f"{dataset_sha256(s / 'rules.yaml')[:12]})",
        f"input changed: input {s / 'projects' / 'P02.geojson'}: changed (sha256 000000000000 -> "
        f"{dataset_sha256(s / 'projects' / 'P02.geojson')[:12]})",
    ]
    assert one_line(result) == f"{report}: 1 of 1 changed; 3 file(s) changed"


def test_an_edited_layer_hash_is_a_difference(run, screened, tmp_path):
    def layer(record):
        record["provenance"]["layers"][0]["sha256"] = "0" * 64

    report = edited(screened, tmp_path, "p02.json", layer)
    entry = json.loads(report.read_text("utf-8"))["provenance"]["layers"][0]
    result = run("verify", report)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "P02: unchanged (reject)"  # layers are data: screened again, and the difference named
    assert lines[1] == (
        f"input changed: layer {entry['name']!r} {entry['path']}: changed (sha256 000000000000 -> "
        f"{dataset_sha256(entry['path'])[:12]})"
    )
    assert one_line(result) == f"{report}: 0 of 1 changed; 1 file(s) changed"


# -- Item 19: paths inside a report are not trusted ----------------------------------------------


def attacker_files(tmp_path: Path) -> tuple[Path, Path]:
    """A manifest and a rule file an attacker put elsewhere: the rules would not even load."""
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "layers.yaml").write_text("layers: {}\n", encoding="utf-8")
    (evil / "rules.yaml").write_text("rules: [{id: x, condition: 'this is not CEL ((('}]\n", encoding="utf-8")
    return evil / "layers.yaml", evil / "rules.yaml"


def test_an_edited_manifest_and_rules_path_is_not_run(run, screened, tmp_path):
    layers, rules = attacker_files(tmp_path)

    def elsewhere(record):
        record["provenance"]["manifest"]["path"] = str(layers)
        record["provenance"]["rules"][0]["path"] = str(rules)

    recorded = json.loads((screened / "p02.json").read_text("utf-8"))["provenance"]
    result = run("verify", edited(screened, tmp_path, "p02.json", elsewhere))
    # exit 1, not 2: the attacker's rule file (which cannot load) was never read
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "P02: not screened again: a file it names changed",
        f"input changed: manifest {layers}: changed (sha256 {recorded['manifest']['sha256'][:12]} -> "
        f"{dataset_sha256(layers)[:12]})",
        f"input changed: rules {rules}: changed (sha256 {recorded['rules'][0]['sha256'][:12]} -> "
        f"{dataset_sha256(rules)[:12]})",
    ]


def test_a_recorded_path_that_is_a_fifo_does_not_hang(run, screened, tmp_path):
    fifo = tmp_path / "layers.yaml"
    os.mkfifo(fifo)

    def elsewhere(record):
        record["provenance"]["manifest"]["path"] = str(fifo)

    report = edited(screened, tmp_path, "p02.json", elsewhere)
    result = run("verify", report)
    assert result.exit_code == 2
    assert one_line(result) == f"Error: {report}: its manifest {fifo} is gone; restore it, or give --layers"


def test_relocated_files_are_given_on_the_command_line(run, screened, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(screened / "s", moved)
    report = edited(screened, tmp_path, "p02.json", lambda r: None)
    (moved / "P02.geojson").write_bytes((screened / "s" / "projects" / "P02.geojson").read_bytes())
    given = ("--layers", moved / "layers.yaml", "--rules", moved / "rules.yaml", "--input", moved / "P02.geojson")
    result = run("verify", report, *given)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "P02: unchanged (reject)\n"
    # a relocated file must have the recorded sha256 too
    (moved / "rules.yaml").write_text((moved / "rules.yaml").read_text("utf-8") + "\n# edited\n", encoding="utf-8")
    changed = run("verify", report, *given)
    assert changed.exit_code == 1
    assert changed.stdout.splitlines()[1].startswith(f"input changed: rules {moved / 'rules.yaml'}: changed (sha256 ")


# -- Item 20: a batch's results.jsonl, and the HTML report ---------------------------------------


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory, screened):
    from click.testing import CliRunner

    from threelines.cli.main import cli

    out = tmp_path_factory.mktemp("batch") / "out"
    s = screened / "s"
    args = ["batch", str(s / "projects.gpkg"), "--layers", str(s / "layers.yaml"), "--rules", str(s / "rules.yaml")]
    result = CliRunner().invoke(cli, [*args, "-o", str(out), "--jobs", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out


def test_a_batch_verifies_from_its_results_and_provenance(run, batch_out):
    result = run("verify", batch_out / "results.jsonl")
    assert result.exit_code == 0, result.stdout
    assert sorted(result.stdout.splitlines())[0] == "P01: unchanged (pass)"
    assert len(result.stdout.splitlines()) == 13
    assert one_line(result) == f"{batch_out / 'results.jsonl'}: unchanged (13 project(s))"
    assert run("verify", batch_out).exit_code == 0  # the output folder names it too


def test_a_batch_of_a_relative_path_verifies_in_place_and_moved(run, screened, tmp_path, monkeypatch):
    """The input hashes do not depend on how the input path was typed, nor on where the input is now."""
    s = screened / "s"
    shutil.copy(s / "projects.gpkg", tmp_path / "a.gpkg")
    monkeypatch.chdir(tmp_path)
    rules = ["--layers", str(s / "layers.yaml"), "--rules", str(s / "rules.yaml")]
    assert run("batch", "a.gpkg", *rules, "-o", "out", "--jobs", "1").exit_code == 0
    assert one_line(run("verify", "out")) == "out: unchanged (13 project(s))"
    (tmp_path / "a.gpkg").rename(tmp_path / "moved.gpkg")
    result = run("verify", "out", "--input", "moved.gpkg")
    assert result.exit_code == 0, result.stdout
    assert one_line(result) == "out: unchanged (13 project(s))"


def test_a_tampered_batch(run, batch_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(batch_out, out)
    lines = (out / "results.jsonl").read_text("utf-8").splitlines(keepends=True)
    kept = []
    for line in lines:
        record = json.loads(line)
        if record["project"]["id"] == "P06":
            continue  # deleted
        if record["project"]["id"] == "P05":
            record["verdict"] = "pass"
            line = json.dumps(record, ensure_ascii=False) + "\n"
        kept.append(line)
    (out / "results.jsonl").write_text("".join(kept), encoding="utf-8")
    result = run("verify", out / "results.jsonl")
    assert result.exit_code == 1
    assert sorted(line for line in result.stdout.splitlines() if "unchanged" not in line) == [
        "P05: verdict pass -> reject",
        "P06: missing from results.jsonl",
    ]


def test_the_html_report_verifies_from_its_embedded_json(run, screened):
    page = (screened / "p02.html").read_text("utf-8")
    assert '<script type="application/json" id="threelines-result">[{' in page
    result = run("verify", screened / "p02.html")
    assert result.exit_code == 0, result.stdout
    assert result.stdout == "P02: unchanged (reject)\n"


def test_a_tampered_html_report(run, screened, tmp_path):
    page = (screened / "p02.html").read_text("utf-8")
    # the verdict a reader sees, edited
    shown = tmp_path / "shown.html"
    shown.write_text(page.replace('data-verdict="reject">Verdict: Reject', 'data-verdict="pass">Verdict: Pass')
                     .replace('class="verdict reject"', 'class="verdict pass"'), encoding="utf-8")  # fmt: skip
    assert shown.read_text("utf-8") != page
    result = run("verify", shown)
    assert result.exit_code == 1
    assert "P02: the page shows another verdict than its embedded result (reject)" in result.stdout.splitlines()
    # the embedded result edited
    inner = tmp_path / "inner.html"
    inner.write_text(page.replace('"verdict": "reject"', '"verdict": "pass"'), encoding="utf-8")
    result = run("verify", inner)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "P02: the page shows another verdict than its embedded result (pass)"
    assert result.stdout.splitlines()[1].startswith("P02: verdict pass -> reject")
    # no embedded result at all
    bare = tmp_path / "bare.html"
    bare.write_text(page.split('<script type="application/json"')[0] + "</html>\n", encoding="utf-8")
    result = run("verify", bare)
    assert result.exit_code == 2
    assert one_line(result) == f"Error: {bare}: an HTML page without the embedded result (id threelines-result); {HINT}"


# -- Item 21: bad reports, one line and exit 2 ----------------------------------------------------


def test_provenance_of_the_wrong_type(run, screened, tmp_path):
    def garbage(record):
        record["provenance"] = "garbage"

    report = edited(screened, tmp_path, "p02.json", garbage)
    result = run("verify", report)
    assert result.exit_code == 2
    assert one_line(result) == (
        f"Error: {report}: record 1: provenance: 'garbage' is not of type 'object'; it was not written by threelines"
    )


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (("provenance", "rules"), [], "provenance.rules: [] should be non-empty"),
        (("provenance", "input", "sha256"), 7, "provenance.input.sha256: 7 is not of type 'string', 'null'"),
        (("triggers",), {"a": 1}, "triggers: {'a': 1} is not of type 'array'"),
        (("project", "id"), ["P02"], "project.id: ['P02'] is not of type 'string'"),
    ],
)
def test_keys_of_the_wrong_type(run, screened, tmp_path, where, value, message):
    def put(record):
        node = record
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value

    report = edited(screened, tmp_path, "p02.json", put)
    result = run("verify", report)
    assert result.exit_code == 2
    assert one_line(result) == f"Error: {report}: record 1: {message}; it was not written by threelines"


@pytest.mark.parametrize("depth", [257, 5_000, 100_000])
def test_a_report_nested_too_deep(run, tmp_path, depth):
    report = tmp_path / "r.json"
    report.write_text("[" * depth + "]" * depth, encoding="utf-8")
    result = run("verify", report)
    assert result.exit_code == 2
    assert one_line(result) == f"Error: {report}: JSON nested more than 256 deep, the most a report may have"


def test_json_depth():
    from threelines.report.reading import json_depth

    assert json_depth({"a": "[[[[{{{{", "b": [[1], {"c": []}]}) == 4
    assert json_depth(3) == 0
    assert json_depth([[[[[]]]]], limit=2) == 3  # stops once past the limit


def test_a_report_over_the_size_limit(run, screened, tmp_path, monkeypatch):
    import threelines.report.reading

    monkeypatch.setattr(threelines.report.reading, "MAX_REPORT_BYTES", 1000)
    report = screened / "p02.json"
    result = run("verify", report)
    assert result.exit_code == 2
    assert one_line(result) == (
        f"Error: {report}: {report.stat().st_size:,} bytes, more than the 1,000 a report may have; "
        "verify it in parts (one report per input)"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 4, f"is binary, not a report; {HINT}"),
        ("{\"project\": \"北京\"}".encode("gbk"), f"is not UTF-8 text; {HINT}"),
        (b"{\"project\": {\"id\": \"P01\"}, ", f"line 1: not JSON (Expecting property name enclosed in double quotes); {HINT}"),
        (b"[1, 2]", f"record 1 is a JSON int, not an object; {HINT}"),
        (b"1" * 5000, f"not a JSON report (Exceeds the limit (4300 digits) for integer string conversion: value has "
                      f"5000 digits; use sys.set_int_max_str_digits() to increase the limit); {HINT}"),
    ],
)  # fmt: skip
def test_bad_report_files(run, tmp_path, content, message):
    report = tmp_path / "r.json"
    report.write_bytes(content)
    result = run("verify", report)
    assert result.exit_code == 2
    assert one_line(result) == f"Error: {report}: {message}"


# -- Also: screen -o ----------------------------------------------------------------------------


def test_an_existing_output_is_refused_before_the_work(run, sample_dir, tmp_path):
    out = tmp_path / "r.json"
    out.write_text("keep me\n", encoding="utf-8")
    # the manifest does not exist: had the work started, that would be the error
    result = run("screen", sample_dir / "projects" / "P02.geojson", "--layers", tmp_path / "none.yaml", "-o", out)
    assert result.exit_code == 2
    assert one_line(result) == f"Error: {out}: exists; give --overwrite to replace it, or another -o"
    assert out.read_text("utf-8") == "keep me\n"


def test_several_projects_into_a_json_file_make_an_array(run, screened):
    records = json.loads((screened / "all.json").read_text("utf-8"))
    assert isinstance(records, list)
    assert [r["project"]["id"] for r in records] == [f"P{i:02d}" for i in range(1, 14)]


def test_several_projects_into_jsonl_or_stdout_are_json_lines(run, sample_dir, tmp_path):
    out = tmp_path / "all.jsonl"
    assert run("screen", sample_dir / "projects.gpkg", "-o", out).exit_code == 0
    lines = out.read_text("utf-8").splitlines()
    assert [json.loads(line)["project"]["id"] for line in lines] == [f"P{i:02d}" for i in range(1, 14)]
    stdout = run("screen", sample_dir / "projects.gpkg", "--format", "json").stdout.splitlines()
    assert [json.loads(line)["project"]["id"] for line in stdout] == [f"P{i:02d}" for i in range(1, 14)]


def test_options_no_screen_option_sets(run, screened, tmp_path):
    def options(record):
        record["provenance"]["options"] = {"evil": 1}

    report = edited(screened, tmp_path, "p02.json", options)
    result = run("verify", report)
    assert result.exit_code == 2
    assert one_line(result) == (
        f"Error: {report}: the provenance block's options name 'evil', which no option of screen sets; "
        "it was not written by threelines"
    )


def test_edited_units_and_requirements(run, screened, tmp_path):
    def units(records):
        p03 = next(r for r in records if r["project"]["id"] == "P03")
        p03["units"][0]["code"] = "ZH000"
        p04 = next(r for r in records if r["project"]["id"] == "P04")
        p04["requirements"] = [q for q in p04["requirements"] if q["clause"] != "QY-03"]

    result = run("verify", edited(screened, tmp_path, "all.json", units))
    assert result.exit_code == 1
    assert [line for line in result.stdout.splitlines() if "unchanged" not in line] == [
        "P03: control units ZH000 0.829012, ZH36012110012 0.170988 -> ZH36012110012 0.170988, ZH36012130015 0.829012",
        "P04: access-list requirements QY-04, QY-06, QY-07, YB-03, YB-05, YB-06 -> "
        "QY-03, QY-04, QY-06, QY-07, YB-03, YB-05, YB-06",
    ]
