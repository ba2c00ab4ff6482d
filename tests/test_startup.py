"""A short run imports only what it uses: screening one project loads no plotting, cluster, database or web code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Packages the screening and batch paths never use unless asked for (a report with a map, --engine dask,
#: a PostGIS layer, serve, the progress bar), and the CEL package's own interactive shell.
UNUSED = {
    "matplotlib", "mplfonts", "dask", "distributed", "dask_geopandas", "psycopg", "xlsxwriter", "fastapi",
    "uvicorn", "starlette", "tqdm", "jinja2", "prompt_toolkit", "typer", "rich", "pygments",
}  # fmt: skip

RUN = """
import json, sys
from threelines.cli.main import main
found = sys.argv[2]
sys.argv = ["threelines", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
with open(found, "w") as fh:
    json.dump({
        "code": code, "modules": sorted({name.split(".")[0] for name in sys.modules}),
        "commands": sorted(name for name in sys.modules if name.startswith("threelines.cli.")),
        "loaded": sorted(sys.modules),
    }, fh)  # fmt: skip
"""


def run_cli(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the command in a fresh interpreter; return it and what it had imported when it ended."""
    found = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps([str(a) for a in args]), str(found)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done, json.loads(found.read_text())


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_screening_one_project_imports_nothing_it_does_not_use(tmp_path, sample_dir, fmt):
    done, seen = run_cli(tmp_path, "screen", sample_dir / "projects" / "P04.geojson", "--format", fmt)
    assert seen["code"] in (0, None)
    if fmt == "json":
        assert json.loads(done.stdout)["verdict"] == "conditional"
    else:
        assert "conditional" in done.stdout
    assert UNUSED.isdisjoint(seen["modules"]), sorted(UNUSED & set(seen["modules"]))
    assert "cel" in seen["modules"]  # the rules ran, through the binding alone
    # Of the subcommands, only the one that ran is imported (with the options and start-up modules all use).
    assert seen["commands"] == ["threelines.cli.main", "threelines.cli.options", "threelines.cli.screen",
                                "threelines.cli.startup"]  # fmt: skip


#: What reading the manifest and rule file costs when they are checked afresh: the YAML parser and the JSON Schema
#: validator. A second run reads them back checked (see threelines.yamlio) and needs neither.
CHECKING = {"yaml", "jsonschema"}


def test_a_second_screening_reads_the_checked_manifest_and_rules_without_parsing_them(tmp_path, sample_dir):
    project = sample_dir / "projects" / "P04.geojson"
    first, cold = run_cli(tmp_path, "screen", project, "--format", "json")
    assert CHECKING.issubset(cold["modules"])  # checked afresh: the test would see it if the cache were not used
    again, warm = run_cli(tmp_path, "screen", project, "--format", "json")
    assert CHECKING.isdisjoint(warm["modules"]), sorted(CHECKING & set(warm["modules"]))
    assert json.loads(again.stdout)["verdict"] == json.loads(first.stdout)["verdict"] == "conditional"
    assert again.stderr == first.stderr


def without_time(stdout: str) -> dict:
    doc = json.loads(stdout)
    doc["provenance"].pop("screened_at")
    return doc


def test_a_second_screening_reads_the_kept_raster_grid_without_rasterio(tmp_path, sample_dir):
    project = sample_dir / "projects" / "P08.geojson"  # above the PM2.5 limit: its zonal rule triggers
    first, cold = run_cli(tmp_path, "screen", project, "--format", "json")
    assert "rasterio" in cold["modules"]  # read from the file: the test would see it if the grid were not kept
    again, warm = run_cli(tmp_path, "screen", project, "--format", "json")
    assert "rasterio" not in warm["modules"]
    # Nor affine (the kept grid's transform is threelines' own arithmetic), nor numpy.ma (no np.unique of no indices).
    unused = {"affine", "attrs", "numpy.ma"} & set(warm["loaded"])
    assert not unused, sorted(unused)
    assert without_time(again.stdout) == without_time(first.stdout)
    assert "pm25-exceed" in [t["rule"] for t in json.loads(again.stdout)["triggers"]]


#: What checking a manifest and rule file and reading layers from their files needs, and their read-back copies not.
FILE_READERS = {"pyogrio", "pandas", "geopandas", "pyarrow", "rasterio", "yaml", "jsonschema"}

READ_BACK = """
import sys
from threelines.cli.startup import light_cel
light_cel()
from threelines.cachedir import cache_folder
from threelines.layers.cache import read_layer_cached
from threelines.layers.manifest import load_manifest
from threelines.rules import load_rules
manifest = load_manifest(sys.argv[1])
load_rules(sys.argv[2], manifest)
for spec in manifest.layers.values():
    if spec.role != "raster":
        read_layer_cached(spec, manifest.working_crs, cache_folder())
print(" ".join(sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[3:]))))
"""


def test_manifest_rules_and_layers_read_back_need_neither_gdal_nor_pandas(sample_dir):
    args = [sys.executable, "-c", READ_BACK, sample_dir / "layers.yaml", sample_dir / "rules.yaml", *FILE_READERS]
    cold = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert set(cold.stdout.split()) == FILE_READERS, cold.stderr  # checked and read afresh: all of them
    warm = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert (warm.stdout, warm.stderr) == ("\n", "")


def test_a_quiet_batch_imports_no_workbook_library_nor_progress_bar(tmp_path, sample_dir):
    out = tmp_path / "out"
    done, seen = run_cli(tmp_path, "batch", sample_dir / "projects" / "P04.geojson", "-o", out, "--jobs", "1", "-q")
    assert (seen["code"], done.stderr) == (0, "")
    assert UNUSED.isdisjoint(seen["modules"]), sorted(UNUSED & set(seen["modules"]))
    assert json.loads((out / "results.jsonl").read_text())["verdict"] == "conditional"


def test_the_cel_binding_loaded_alone_still_offers_the_whole_package():
    code = """
import sys
from threelines.cli.startup import light_cel
assert light_cel() is True and light_cel() is False  # once only
import cel
assert "cel.cli" not in sys.modules and "prompt_toolkit" not in sys.modules
assert cel.evaluate("a + 1", {"a": 2}) == 3
assert cel.compile("a * 2").execute(cel.Context(variables={"a": 4})) == 8
import cel.stdlib  # the parts left out are still there when asked for by name
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout == "ok\n", done.stderr


#: What GDAL's reading of a footprint file imports, and a plain GeoJSON footprint's reading does not.
GDAL_READERS = {"pyogrio", "pandas", "geopandas", "pyarrow"}

READ_FOOTPRINT = """
import sys
from threelines.cli.startup import light_cel
light_cel()
from threelines.input.footprint import read_projects
from threelines.layers.manifest import load_manifest
projects = read_projects(sys.argv[2], load_manifest(sys.argv[1]).working_crs)
assert len(projects) == 1, projects.problems
print(" ".join(sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[3:]))))
"""


def unplain_copy(tmp_path, project):
    """The project's GeoJSON with a feature ``id`` member, which only GDAL's reader reads."""
    doc = json.loads(project.read_text(encoding="utf-8"))
    doc["features"][0]["id"] = 1
    path = tmp_path / "unplain.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_plain_geojson_footprint_is_read_without_gdal_or_pandas(tmp_path, sample_dir):
    project = sample_dir / "projects" / "P04.geojson"

    def imported(path):
        args = [sys.executable, "-c", READ_FOOTPRINT, sample_dir / "layers.yaml", path, *GDAL_READERS]
        done = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return set(done.stdout.split())

    # Read by GDAL (this also leaves the manifest checked, so that it imports none of them itself).
    assert {"pyogrio", "pandas", "geopandas"} <= imported(unplain_copy(tmp_path, project))
    assert imported(project) == set()


def test_a_warm_screening_of_a_geojson_footprint_imports_neither_gdal_nor_pandas(tmp_path, sample_dir):
    project = sample_dir / "projects" / "P04.geojson"
    other, gdal = run_cli(tmp_path, "screen", unplain_copy(tmp_path, project), "--format", "json")
    assert {"pyogrio", "pandas", "geopandas"} <= set(gdal["modules"])  # the same, the footprint read by GDAL
    done, seen = run_cli(tmp_path, "screen", project, "--format", "json")
    assert not GDAL_READERS & set(seen["modules"])
    assert json.loads(done.stdout)["verdict"] == json.loads(other.stdout)["verdict"] == "conditional"


def test_the_collector_is_held_for_a_screening_resumed_for_its_report_and_restored_after():
    import gc

    from threelines.collector import collector_held, resume_collector

    assert gc.isenabled()
    with collector_held():
        assert not gc.isenabled()
        resume_collector()  # the report's maps: collected as usual
        assert gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # a caller that holds it itself keeps it held
    try:
        with collector_held():
            resume_collector()
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_holds_of_the_collector_in_several_threads_leave_it_as_they_found_it():
    """Holds that overlap across threads (the service's requests, a worker's threads) never leave it off."""
    import gc
    import threading

    from threelines.collector import collector_held

    start = threading.Barrier(4)
    seen_on: list[bool] = []

    def hold(n: int) -> None:
        start.wait()
        for _ in range(n):
            with collector_held(settle=n % 2 == 0):
                seen_on.append(gc.isenabled())

    assert gc.isenabled()
    threads = [threading.Thread(target=hold, args=(5_000 + i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()
    assert not any(seen_on)  # held throughout every hold, whichever thread ended its own meanwhile
