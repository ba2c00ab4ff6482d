"""PostGIS layers: push a manifest into a real PostgreSQL + PostGIS, screen from it, get the same verdicts.

The server is the one ``scripts/pg_test_server.sh start`` runs (``.ci/run``
starts it and sets THREELINES_TEST_PG); each test works in a schema of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

URL = os.environ.get("THREELINES_TEST_PG")


@pytest.fixture
def pg():
    """The test server's URL and a fresh schema, dropped afterwards."""
    if not URL:
        if os.environ.get("CI"):
            pytest.fail("THREELINES_TEST_PG is not set; .ci/run starts PostGIS with scripts/pg_test_server.sh")
        pytest.skip("no PostGIS server: eval export THREELINES_TEST_PG=$(scripts/pg_test_server.sh start)")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    yield URL, schema
    with psycopg.connect(URL) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def pushed(run, pg, sample_dir, tmp_path):
    """The sample's layers pushed into PostGIS; the new manifest's path."""
    url, schema = pg
    out = tmp_path / "pg.yaml"
    result = run("layers", "push", sample_dir / "layers.yaml", "--to", url, "--schema", schema, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"redline: 32 features -> {schema}.redline",
        f"units: 47 features -> {schema}.units",
        f"quality: 4 features -> {schema}.quality",
        f"caps: 3 features -> {schema}.caps",
        f"pm25: raster, stays the file {(sample_dir / 'layers' / 'pm25.tif').resolve()}",
        f"county: 1 features -> {schema}.county",
    ]
    return out


def records(run, *args) -> list[dict]:
    result = run("screen", *args, "--format", "json", "--lang", "en")
    assert result.exit_code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    for record in out:
        record.pop("provenance")
    return out


def test_verdicts_from_postgis_equal_verdicts_from_files(run, pushed, sample_dir):
    from_files = records(run, sample_dir / "projects.gpkg")
    from_db = records(run, sample_dir / "projects.gpkg", "--layers", pushed)
    assert [r["verdict"] for r in from_db] == [r["verdict"] for r in from_files]
    assert {r["jurisdiction"]["sample"] for r in from_db} == {"SAMPLE DATA — synthetic layers"}  # a copy keeps it
    for db, files in zip(from_db, from_files, strict=True):
        for key in sorted(set(db) | set(files)):
            assert db.get(key) == files.get(key), key  # every trigger, area, distance, unit and message


def test_pushed_manifest_points_at_the_tables(pushed, pg):
    import yaml

    url, schema = pg
    doc = yaml.safe_load(pushed.read_text("utf-8"))
    paths = {e["name"]: e["path"] for e in doc["layers"]}
    assert paths["redline"] == f"{url}?table={schema}.redline"
    assert paths["pm25"].endswith("pm25.tif")
    caps = next(e for e in doc["layers"] if e["name"] == "caps")
    assert "encoding" not in caps  # the GBK shapefile's text is UTF-8 in the database
    assert doc["sample"] is True  # the sample's layers, so the sample's mark


def test_only_features_near_the_footprint_are_read(pushed):
    from threelines.layers.manifest import load_manifest
    from threelines.layers.read import read_layer

    manifest = load_manifest(pushed)
    spec = manifest.layers["redline"]
    everything = read_layer(spec, manifest.working_crs)
    x, y = everything.geometry[0].centroid.coords[0]
    near = read_layer(spec, manifest.working_crs, (x - 10, y - 10, x + 10, y + 10))
    assert len(everything) == 32
    assert 1 <= len(near) < 4
    assert everything.ids[0] in set(near.ids)


def test_layers_check_reads_postgis(run, pushed):
    result = run("layers", "check", pushed)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.strip() == f"{pushed}: 6 layers, no problems"


def test_source_block_reads_the_connection_from_the_environment(run, pg, pushed, sample_dir, tmp_path, monkeypatch):
    url, schema = pg
    text = pushed.read_text("utf-8").replace(
        f"path: {url}?table={schema}.redline",
        f"source: {{dsn_env: REDLINE_DB, query: \"SELECT * FROM {schema}.redline WHERE id <> 'HX360121010'\"}}",
    )
    manifest = tmp_path / "query.yaml"
    manifest.write_text(text, encoding="utf-8")
    site = sample_dir / "projects" / "P02.geojson"
    missing = run("screen", site, "--layers", manifest)
    assert missing.exit_code == 2
    assert missing.stderr.strip().endswith(
        "layer 'redline': environment variable REDLINE_DB is not set; export REDLINE_DB=postgresql://user@host:5432/db"
    )
    monkeypatch.setenv("REDLINE_DB", url)
    (record,) = records(run, site, "--layers", manifest)
    # the query leaves out the red line P02 overlaps: the reject is gone
    assert record["verdict"] == "conditional"
    assert "redline-overlap" not in {t["rule"] for t in record["triggers"]}


def test_passwords_stay_out_of_manifests(run, pg, pushed, sample_dir, tmp_path):
    url, _ = pg
    manifest = tmp_path / "secret.yaml"
    manifest.write_text(
        pushed.read_text("utf-8").replace("postgresql://postgres@", "postgresql://postgres:s3cret@"), encoding="utf-8"
    )
    result = run("screen", sample_dir / "projects" / "P01.geojson", "--layers", manifest)
    assert result.exit_code == 2
    assert "layer 'redline': the path holds a password; remove it and give it in PGPASSWORD or ~/.pgpass" in (
        result.stderr
    )
    push = run("layers", "push", sample_dir / "layers.yaml", "--to", url.replace("postgres@", "postgres:x@"),
               "-o", tmp_path / "x.yaml")  # fmt: skip
    assert push.exit_code == 2
    assert push.stderr.strip() == "Error: --to: the URL holds a password; give it in PGPASSWORD or ~/.pgpass instead"


def test_push_does_not_replace_tables_without_overwrite(run, pg, pushed, sample_dir, tmp_path):
    url, schema = pg
    again = run(
        "layers", "push", sample_dir / "layers.yaml", "--to", url, "--schema", schema, "-o", tmp_path / "b.yaml"
    )
    assert again.exit_code == 2
    assert again.stderr.strip() == f"Error: table {schema}.redline exists; give --overwrite to replace it"


def test_unreachable_database_is_one_clear_error(run, sample_dir, tmp_path):
    shutil.copytree(sample_dir, tmp_path / "s")
    manifest = tmp_path / "s" / "layers.yaml"
    text = (
        manifest.read_text("utf-8")
        .replace("path: layers/redline.gpkg", "path: postgresql://nobody@127.0.0.1:1/none?table=public.redline")
        .replace("    layer: redline\n", "")
    )
    manifest.write_text(text, encoding="utf-8")
    result = run("screen", tmp_path / "s" / "projects" / "P01.geojson", "--layers", manifest)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"Error: {manifest}:13: layer 'redline': cannot read postgresql://nobody@127.0.0.1:1/none?table=public.redline: "
    )


def test_verify_sees_a_changed_table(run, pg, pushed, sample_dir, tmp_path):
    import psycopg

    url, schema = pg
    report = tmp_path / "r.json"
    assert run("screen", sample_dir / "projects" / "P02.geojson", "--layers", pushed, "-o", report).exit_code == 0
    assert run("verify", report).exit_code == 0
    with psycopg.connect(url) as conn:
        conn.execute(f"DELETE FROM {schema}.redline WHERE id = 'HX360121010'")
    changed = run("verify", report)
    assert changed.exit_code == 1
    lines = changed.stdout.splitlines()
    assert (
        lines[0] == "P02: verdict reject -> conditional; trigger redline-overlap (reject, feature HX360121010) is gone"
    )
    assert lines[1].startswith(f"input changed: layer 'redline' {url}?table={schema}.redline: changed (sha256 ")


def test_push_protects_tables_in_a_mixed_case_schema(run, pg, sample_dir, tmp_path):
    import psycopg

    url, schema = pg
    mixed = schema.replace("t_", "Mixed_")
    args = ("layers", "push", sample_dir / "layers.yaml", "--to", url + "?sslmode=disable", "--schema", mixed)
    try:
        assert run(*args, "-o", tmp_path / "a.yaml").exit_code == 0
        assert f"?sslmode=disable&table={mixed}.redline" in (tmp_path / "a.yaml").read_text("utf-8")
        again = run(*args, "-o", tmp_path / "b.yaml")
        assert again.exit_code == 2
        assert again.stderr.strip() == f"Error: table {mixed}.redline exists; give --overwrite to replace it"
        bad = run(
            "layers",
            "push",
            sample_dir / "layers.yaml",
            "--to",
            url,
            "--schema",
            "my-schema",
            "-o",
            tmp_path / "c.yaml",
        )
        assert bad.exit_code == 2
        assert bad.stderr.strip() == "Error: --schema: 'my-schema' is not a plain name (letters, digits, _)"
    finally:
        with psycopg.connect(url) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{mixed}" CASCADE')


def test_a_manifest_query_is_one_select(run, pg, pushed, sample_dir, tmp_path, monkeypatch):
    url, schema = pg
    monkeypatch.setenv("DB", url)
    text = pushed.read_text("utf-8").replace(
        f"path: {url}?table={schema}.redline",
        f'source: {{dsn_env: DB, query: "SELECT * FROM {schema}.redline; DROP TABLE {schema}.units"}}',
    )
    manifest = tmp_path / "q.yaml"
    manifest.write_text(text, encoding="utf-8")
    result = run("screen", sample_dir / "projects" / "P01.geojson", "--layers", manifest)
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("layer 'redline': query must be one SELECT, without ';'")
