"""Checked manifests and rule files are kept as plain JSON and read back only while nothing has changed."""

from __future__ import annotations

import json
import logging
import shutil

import geopandas as gpd
import pyogrio
import pytest
import rasterio
from pyproj import CRS

from threelines import yamlio
from threelines.cachedir import cache_folder
from threelines.errors import ManifestError, RuleError
from threelines.layers.manifest import check_manifest, load_manifest
from threelines.rules import access_list_load, check_rules

SCHEMA = "rules.schema.json"


def entries() -> list:
    folder = cache_folder() / yamlio.CHECKED_DIR
    return sorted(folder.glob("*.json")) if folder.exists() else []


def load(path):
    return yamlio.load_checked(path, SCHEMA, RuleError, "rule file (--rules)")


def test_a_clean_document_comes_back_the_same_from_its_entry(sample_dir):
    first, problems = load(sample_dir / "rules.yaml")
    assert problems == []
    assert len(entries()) == 1
    again, problems = load(sample_dir / "rules.yaml")
    assert problems == []
    assert repr(again.data) == repr(first.data)
    assert again.lines == first.lines
    assert again.path == first.path


def test_the_entry_is_what_the_next_run_reads(sample_dir, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_bytes((sample_dir / "rules.yaml").read_bytes())
    load(rules)
    (entry,) = entries()
    kept = json.loads(entry.read_text("utf-8"))
    kept["data"]["rules"][0]["title"] = "from the entry"
    entry.write_text(json.dumps(kept), "utf-8")
    assert load(rules)[0].data["rules"][0]["title"] == "from the entry"


def test_a_changed_file_is_checked_again(tmp_path, sample_dir):
    rules = tmp_path / "rules.yaml"
    text = (sample_dir / "rules.yaml").read_text("utf-8")
    rules.write_text(text, "utf-8")
    load(rules)
    rules.write_text(text.replace("outcome: reject", "outcome: deny", 1), "utf-8")
    _, problems = load(rules)
    assert problems
    assert "'deny' is not one of" in problems[0]
    assert len(entries()) == 1  # the bad version is never kept


def test_a_document_with_problems_gives_the_same_messages_every_run(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: a\n    outcome: deny\n", "utf-8")
    first = load(rules)[1]
    assert first
    assert load(rules)[1] == first
    assert entries() == []


@pytest.mark.parametrize(
    ("name", "old", "new", "schema", "error"),
    [
        # a number as a key: JSON would give it back as text
        ("layers.yaml", "    class_field: class ", "    class_map:\n      4: priority\n    class_field: class ",
         "manifest.schema.json", ManifestError),
        ("layers.yaml", "  E485: 10", "  E485: .nan", "manifest.schema.json", ManifestError),  # NaN: not JSON
        # a date: JSON has none
        ("rules.yaml", "      - {expect: no_trigger, footprint: projects/P04.geojson}",
         "      - {expect: no_trigger, footprint: projects/P04.geojson, project: {name: 2021-06-01}}",
         SCHEMA, RuleError),
    ],
)  # fmt: skip
def test_what_json_cannot_give_back_exactly_is_not_kept(tmp_path, sample_dir, name, old, new, schema, error):
    text = (sample_dir / name).read_text("utf-8")
    assert old in text
    doc_path = tmp_path / name
    doc_path.write_text(text.replace(old, new, 1), "utf-8")
    first, problems = yamlio.load_checked(doc_path, schema, error, "the file")
    assert problems == []
    again, _ = yamlio.load_checked(doc_path, schema, error, "the file")
    assert entries() == []
    assert repr(again.data) == repr(first.data)


def test_a_damaged_entry_is_ignored_and_replaced(sample_dir, caplog):
    load(sample_dir / "rules.yaml")
    (entry,) = entries()
    entry.write_text('{"data": ', "utf-8")
    with caplog.at_level(logging.INFO, logger="threelines.yamlio"):
        doc, problems = load(sample_dir / "rules.yaml")
    assert problems == []
    assert doc.data["rules"]
    assert "cannot be used" in caplog.text
    assert json.loads(entry.read_text("utf-8"))["data"] == doc.data


def test_manifest_and_rules_check_the_same_from_their_entries(sample_dir):
    cold_manifest, problems = check_manifest(sample_dir / "layers.yaml")
    assert problems == []
    cold_rules, problems = check_rules(sample_dir / "rules.yaml", cold_manifest)
    assert problems == []
    assert len(entries()) == 4  # the two documents, the manifest checked against its layers, the access list
    warm_manifest, problems = check_manifest(sample_dir / "layers.yaml")
    assert problems == []
    assert warm_manifest == cold_manifest
    warm_rules, problems = check_rules(sample_dir / "rules.yaml", warm_manifest)
    assert problems == []
    assert [r.id for r in warm_rules.rules] == [r.id for r in cold_rules.rules]
    assert warm_rules.clauses == cold_rules.clauses


def test_an_unwritable_cache_only_costs_time(tmp_path, monkeypatch, sample_dir):
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("THREELINES_CACHE", str(blocked))  # a file where the folder should be
    doc, problems = load(sample_dir / "rules.yaml")
    assert problems == []
    assert doc.data["rules"]


@pytest.fixture
def sample_copy(tmp_path, sample_dir):
    """The sample's manifest and layers, in a folder where a test may change them."""
    shutil.copytree(sample_dir / "layers", tmp_path / "layers")
    shutil.copy(sample_dir / "layers.yaml", tmp_path / "layers.yaml")
    return tmp_path / "layers.yaml"


def test_a_kept_manifest_opens_no_layer_file(sample_copy, monkeypatch):
    cold, _ = check_manifest(sample_copy)

    def refuse(*args, **kwargs):
        raise AssertionError("a layer file was opened")

    monkeypatch.setattr(pyogrio, "read_info", refuse)
    monkeypatch.setattr(rasterio, "open", refuse)
    warm, problems = check_manifest(sample_copy)
    assert problems == []
    assert warm == cold
    assert [s.crs.to_wkt() for s in warm.layers.values()] == [s.crs.to_wkt() for s in cold.layers.values()]
    assert warm.working_crs.to_wkt() == cold.working_crs.to_wkt()
    assert [type(v) for v in warm.extent] == [type(v) for v in cold.extent]


def test_a_changed_layer_file_is_checked_again(sample_copy):
    assert check_manifest(sample_copy)[1] == []
    units = sample_copy.parent / "layers" / "units.gpkg"
    frame = gpd.read_file(units).rename(columns={"class": "kind"})
    units.unlink()
    frame.to_file(units, layer="units")
    manifest, problems = check_manifest(sample_copy)
    assert manifest is None
    assert "class_field 'class' is not a field of" in problems[0]


def test_a_changed_sidecar_of_a_shapefile_is_seen(sample_copy):
    before = check_manifest(sample_copy)[0].layers["caps"].crs
    assert check_manifest(sample_copy)[0].layers["caps"].crs == before  # kept
    (sample_copy.parent / "layers" / "caps.prj").write_text(CRS.from_epsg(4326).to_wkt("WKT1_ESRI"))
    after = check_manifest(sample_copy)[0].layers["caps"].crs
    assert after != before
    assert after.to_epsg() == 4326


def test_a_guessed_encoding_is_noted_on_every_run(sample_copy, caplog):
    text = sample_copy.read_text("utf-8").replace("    encoding: GBK\n", "")
    sample_copy.write_text(text, "utf-8")
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="threelines.input.encoding"):
            check_manifest(sample_copy)
        assert "no .cpg; attributes read as GB18030" in caplog.text


@pytest.fixture
def rules_copy(sample_copy, sample_dir):
    """The sample's rule file and access list beside the copied manifest."""
    shutil.copy(sample_dir / "rules.yaml", sample_copy.parent / "rules.yaml")
    shutil.copy(sample_dir / "access_list.csv", sample_copy.parent / "access_list.csv")
    shutil.copytree(sample_dir / "projects", sample_copy.parent / "projects")
    return sample_copy.parent / "rules.yaml"


def test_a_kept_access_list_reads_neither_the_table_nor_the_unit_layer(sample_copy, rules_copy, monkeypatch):
    manifest = load_manifest(sample_copy)
    cold, problems = check_rules(rules_copy, manifest)
    assert problems == []

    def refuse(*args, **kwargs):
        raise AssertionError("read again")

    monkeypatch.setattr(access_list_load, "read_access_list", refuse)
    monkeypatch.setattr(access_list_load, "unit_codes", refuse)
    warm, problems = check_rules(rules_copy, manifest)
    assert problems == []
    assert warm.clauses == cold.clauses
    assert warm.clause_layer == cold.clause_layer


def test_a_changed_unit_layer_checks_the_access_list_again(sample_copy, rules_copy):
    assert check_rules(rules_copy, load_manifest(sample_copy))[1] == []
    units = sample_copy.parent / "layers" / "units.gpkg"
    frame = gpd.read_file(units)
    gone = "ZH36012110001"  # a unit the access list names
    units.unlink()
    frame[frame["code"] != gone].to_file(units, layer="units")
    _, problems = check_rules(rules_copy, load_manifest(sample_copy))
    assert any(f"unit: {gone!r} is not a unit code of layer 'units'" in p for p in problems), problems


def test_an_access_list_with_problems_is_never_kept(sample_copy, rules_copy):
    table = sample_copy.parent / "access_list.csv"
    text = table.read_text("utf-8") + "YB-07,ZH36019999999,资源开发效率要求,,,要求,text,basis\n"
    table.write_text(text, "utf-8")
    manifest = load_manifest(sample_copy)
    first = check_rules(rules_copy, manifest)[1]
    assert first == [f"{table}:{len(text.splitlines())}: unit: 'ZH36019999999' is not a unit code of layer 'units'"]
    assert check_rules(rules_copy, manifest)[1] == first
