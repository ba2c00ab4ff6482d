"""The install's parts: each extra missing gives one line and exit 2; the base works with none; version and -m."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import threelines
from threelines.extras import EXTRAS

#: Every module the extras bring: a base install has none of them.
EXTRA_MODULES = sorted({m for modules in EXTRAS.values() for m in modules} | {"psycopg_binary", "starlette"})


def blocked(*modules: str) -> str:
    """Python source that makes ``modules`` unimportable, as if pip had not installed them, then runs the CLI."""
    return (
        "import runpy, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    sys.modules[name] = None\n"
        "sys.argv[0] = 'threelines'\n"
        "runpy.run_module('threelines', run_name='__main__', alter_sys=True)\n"
    )


def run_without(modules: list[str], *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", blocked(*modules), *map(str, args)],
        capture_output=True, text=True, encoding="utf-8", cwd=cwd, env={**os.environ, "LANG": "C.UTF-8"}, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("module", ["dask", "distributed", "dask_geopandas"])
def test_batch_on_dask_without_the_dask_extra(module, sample_dir, tmp_path):
    out = tmp_path / "run"
    result = run_without([module], "batch", sample_dir / "projects.gpkg", "-o", out, "--engine", "dask")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: batch --engine dask needs the dask extra ({module} is not installed): pip install 'threelines[dask]'"
    ]
    assert not out.exists()  # refused before anything is written


def test_a_postgis_layer_without_the_postgis_extra(sample_dir, tmp_path):
    shutil.copytree(sample_dir, tmp_path / "s")
    manifest = tmp_path / "s" / "layers.yaml"
    text = manifest.read_text("utf-8").replace(
        "path: layers/redline.gpkg", "path: postgresql://reader@db.example:5432/zoning?table=public.redline"
    )
    manifest.write_text(text.replace("    layer: redline\n", ""), encoding="utf-8")
    result = run_without(["psycopg"], "screen", tmp_path / "s" / "projects" / "P01.geojson", "--layers", manifest)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {manifest}:13: layer 'redline' (a PostGIS source) needs the postgis extra (psycopg is not installed): "
        "pip install 'threelines[postgis]'"
    ]


def test_layers_push_without_the_postgis_extra(sample_dir, tmp_path):
    out = tmp_path / "pg.yaml"
    result = run_without(
        ["psycopg"], "layers", "push", sample_dir / "layers.yaml", "--to", "postgresql://u@127.0.0.1:1/db", "-o", out
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: layers push needs the postgis extra (psycopg is not installed): pip install 'threelines[postgis]'"
    ]
    assert not out.exists()


@pytest.mark.parametrize("module", ["fastapi", "uvicorn", "python_multipart"])
def test_serve_without_the_serve_extra(module):
    result = run_without([module], "serve", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: threelines serve needs the serve extra ({module} is not installed): pip install 'threelines[serve]'"
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".geoparquet"])
def test_a_geoparquet_footprint_without_the_parquet_extra(sample_dir, tmp_path, suffix):
    import geopandas as gpd

    path = tmp_path / f"site{suffix}"
    gpd.read_file(sample_dir / "projects" / "P01.geojson").to_parquet(path)
    result = run_without(["pyarrow"], "screen", path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {path}: reading GeoParquet needs the parquet extra (pyarrow is not installed): "
        "pip install 'threelines[parquet]'"
    ]
    assert run_without([], "screen", path, "--format", "json").returncode == 0  # with it, the same file screens


def test_the_base_install_screens_reports_and_batches_without_any_extra(sample_dir, tmp_path, layer_cache_dir):
    """Every extra's modules blocked: screen, an HTML report and a local batch still run in full."""
    screened = run_without(EXTRA_MODULES, "screen", sample_dir / "projects.gpkg", "--format", "json")
    assert screened.returncode == 0, screened.stderr
    verdicts = [json.loads(line)["verdict"] for line in screened.stdout.splitlines()]
    assert sorted(verdicts) == sorted(["pass"] * 2 + ["conditional"] * 5 + ["reject"] * 6)

    report = tmp_path / "P01.html"
    made = run_without(EXTRA_MODULES, "screen", sample_dir / "projects" / "P01.geojson", "--format", "html", "-o",
                       report)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "@font-face" in report.read_text("utf-8")  # the package's own CJK font, embedded

    out = tmp_path / "run"
    batched = run_without(EXTRA_MODULES, "-q", "batch", sample_dir / "projects.gpkg", "-o", out, "--jobs", "1")
    assert batched.returncode == 0, batched.stderr
    assert len((out / "results.jsonl").read_text("utf-8").splitlines()) == 13
    assert len(list(layer_cache_dir.glob("*.layer"))) >= 4  # the prepared-layer cache needs no pyarrow either


def test_version(run):
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"threelines, version {threelines.__version__}\n"
    assert threelines.__version__ == "0.1.0"


def test_python_m_threelines_is_the_command(sample_dir):
    version = subprocess.run([sys.executable, "-m", "threelines", "--version"], capture_output=True, text=True)
    assert version.returncode == 0
    assert version.stdout == f"threelines, version {threelines.__version__}\n"
    helped = subprocess.run([sys.executable, "-m", "threelines", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    assert helped.stdout.startswith("Usage: threelines [OPTIONS] COMMAND [ARGS]...")
    bad = subprocess.run([sys.executable, "-m", "threelines", "screen", sample_dir / "nothing.geojson"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
