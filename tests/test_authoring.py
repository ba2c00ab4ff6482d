"""Tools for rule authors and data keepers: rules check, rules test, layers check."""

from __future__ import annotations

import shutil
import textwrap

import geopandas as gpd
import pyogrio
import pytest
import shapely


def test_sample_rules_check_clean(run, sample_dir):
    result = run("rules", "check")
    assert result.exit_code == 0
    assert result.stdout == f"{sample_dir / 'rules.yaml'}: 12 rules and 33 access-list clauses, no problems\n"


def test_rules_check_lists_every_problem(run, tmp_path, sample_dir):
    shutil.copytree(sample_dir, tmp_path / "s")
    path = tmp_path / "s" / "rules.yaml"
    text = path.read_text("utf-8")
    text = text.replace("condition: feature.is_park\n", "condition: feature.is_prak\n", 1)
    text = text.replace("outcome: conditional\n", "outcome: maybe\n", 1)
    path.write_text(text, encoding="utf-8")
    result = run("rules", "check", path, "--layers", tmp_path / "s" / "layers.yaml")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"{path}:34: rules[1].outcome: 'maybe' is not one of ['reject', 'conditional']"
    ]
    # with the schema right, the expression problem shows
    path.write_text(text.replace("outcome: maybe\n", "outcome: conditional\n"), encoding="utf-8")
    result = run("rules", "check", path, "--layers", tmp_path / "s" / "layers.yaml")
    assert result.exit_code == 2
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{path}:80: rule 'chem-outside-park': condition: layer 'units' has no field 'is_prak'")
    assert result.stderr == f"1 problem in {path}\n"


def test_sample_rule_examples_pass(run):
    result = run("rules", "test")
    assert result.exit_code == 0
    assert result.stdout == "26 examples, 26 passed, 0 failed\n"


def test_failing_example_is_reported(run, tmp_path, sample_dir):
    shutil.copytree(sample_dir, tmp_path / "s")
    path = tmp_path / "s" / "rules.yaml"
    text = path.read_text("utf-8").replace(
        "- {expect: no_trigger, footprint: projects/P09.geojson, project: {fuel: gas}}",
        "- {expect: no_trigger, footprint: projects/P09.geojson, project: {fuel: heavy_oil}}",
    )
    path.write_text(text, encoding="utf-8")
    result = run("rules", "test", path, "--layers", tmp_path / "s" / "layers.yaml")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{path}:")
    assert "rule 'fuel-ban': expected no_trigger, got trigger (example 2: Burns heavy_oil inside" in lines[0]
    assert lines[-1] == "26 examples, 25 passed, 1 failed"


def test_wkt_examples(run, tmp_path, sample_dir):
    rules = textwrap.dedent(f"""\
        rules:
          - id: near-lake
            title: t
            dimension: redline
            outcome: conditional
            layer: redline
            test: within_distance
            distance_m: 500
            message: m
            basis: b
            examples:
              - expect: trigger
                wkt: POLYGON ((116.0 28.4, 116.001 28.4, 116.001 28.401, 116.0 28.401, 116.0 28.4))
              - expect: no_trigger
                wkt: "{shapely.Point(400000, 3150000).buffer(5).wkt}"
                crs: 4548
        """)
    path = tmp_path / "rules.yaml"
    path.write_text(rules, encoding="utf-8")
    result = run("rules", "test", path, "--layers", sample_dir / "layers.yaml")
    assert result.stdout.splitlines()[-1] in ("2 examples, 2 passed, 0 failed", "2 examples, 1 passed, 1 failed")


def test_missing_example_footprint_is_a_load_error(run, tmp_path, sample_dir):
    shutil.copytree(sample_dir, tmp_path / "s")
    path = tmp_path / "s" / "rules.yaml"
    path.write_text(
        path.read_text("utf-8").replace("projects/P02.geojson", "projects/P99.geojson", 1), encoding="utf-8"
    )
    result = run("rules", "check", path, "--layers", tmp_path / "s" / "layers.yaml")
    assert result.exit_code == 2
    assert "rule 'redline-overlap': examples[0]: footprint projects/P99.geojson not found" in result.stdout


def test_sample_layers_check_clean(run, sample_dir):
    result = run("layers", "check")
    assert result.exit_code == 0
    assert result.stdout == f"{sample_dir / 'layers.yaml'}: 6 layers, no problems\n"


def test_layers_check_finds_tiling_and_data_problems(run, tmp_path):
    boxes = [shapely.box(0, 0, 1000, 1000), shapely.box(900, 0, 2000, 1000), shapely.box(2100, 0, 3000, 1000)]
    bowtie = shapely.Polygon([(3000, 0), (4000, 1000), (4000, 0), (3000, 1000)])
    units = gpd.GeoDataFrame(
        {
            "code": ["U1", "U2", "U2", "U4"],
            "class": ["general"] * 4,
            "name": ["a", "b", "\u00c4\u00cf\u00b2\u00fd", "d"],
        },
        geometry=[*boxes, bowtie],
        crs=4548,
    )
    units["geometry"] = units.geometry.translate(400000, 3150000)
    pyogrio.write_dataframe(units, tmp_path / "units.gpkg")
    outline = gpd.GeoDataFrame({"id": ["B"]}, geometry=[shapely.box(400000, 3150000, 404000, 3151000)], crs=4548)
    pyogrio.write_dataframe(outline, tmp_path / "boundary.gpkg")
    (tmp_path / "layers.yaml").write_text(
        "layers:\n  - {name: units, role: unit, path: units.gpkg, id_field: code, name_field: name, class_field: class}\n"
        "  - {name: outline, role: boundary, path: boundary.gpkg}\n",
        encoding="utf-8",
    )
    result = run("layers", "check", tmp_path / "layers.yaml")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    label = f"{tmp_path / 'units.gpkg'}: layer 'units'"
    assert lines[0].startswith(f"{label}: feature FID 4 (U4) is invalid: Self-intersection, near 116.0")
    assert lines[1] == f"{label}: code 'U2' is used by 2 features (FID 2, 3)"
    assert lines[2] == f"{label}: field 'name' looks mis-decoded (e.g. 'ÄÏ²ý'); set 'encoding: GBK' in the manifest"
    assert lines[3].startswith("layer 'units': units U1 and U2 overlap by 99,97")  # 100 m x 1 km, in GK-zone metres
    assert lines[3].endswith("28.46598N")
    gaps = [line for line in lines if "that no unit covers" in line]
    # the 100 m strip between U2 and U3, with the halves of the bow-tie U4 leaves uncovered
    assert gaps
    assert all(float(g.split("a gap of ")[1].split(" m2")[0].replace(",", "")) > 99_000 for g in gaps)
    assert result.stderr.endswith(f"{len(lines)} problems in the layers of {tmp_path / 'layers.yaml'}\n")


def sample_with_example(tmp_path, sample_dir, example: str):
    """A copy of the sample whose first example of redline-overlap is replaced; return the rule file."""
    shutil.copytree(sample_dir, tmp_path / "s")
    path = tmp_path / "s" / "rules.yaml"
    text = path.read_text("utf-8").replace("- {expect: trigger, footprint: projects/P02.geojson}", f"- {example}", 1)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("example", "message"),
    [
        ("{expect: trigger, wkt: 'POLYGON ((1 2'}", "examples[0]: the WKT does not parse"),
        ("{expect: trigger, wkt: POLYGON EMPTY}", "examples[0]: the WKT geometry is empty"),
        ("{expect: trigger, wkt: 'POINT (116 28.5)', crs: 99999}", "examples[0]: crs: 99999 is not a CRS"),
        (
            "{expect: trigger, footprint: projects/P01.geojson, project: {foo: 1}}",
            "examples[0]: project has no attribute 'foo'",
        ),
    ],
)
def test_bad_examples_are_load_errors(run, tmp_path, sample_dir, example, message):
    path = sample_with_example(tmp_path, sample_dir, example)
    result = run("rules", "check", path, "--layers", tmp_path / "s" / "layers.yaml")
    assert result.exit_code == 2
    assert f"rule 'redline-overlap': {message}" in result.stdout


@pytest.mark.parametrize(
    ("example", "detail"),
    [
        (
            "{expect: trigger, footprint: projects.gpkg}",
            "the example's footprint holds 13 features; an example is one project",
        ),
        (
            "{expect: no_trigger, wkt: 'POINT (110 25)'}",
            "the example lies outside every control unit; screen would refuse it",
        ),
    ],
)
def test_examples_that_cannot_be_screened_exit_2(run, tmp_path, sample_dir, example, detail):
    path = sample_with_example(tmp_path, sample_dir, example)
    result = run("rules", "test", path, "--layers", tmp_path / "s" / "layers.yaml")
    assert result.exit_code == 2
    assert f"got error ({detail})" in result.stdout


def test_layers_check_empty_ids_and_utf8_read_as_latin1(run, tmp_path):
    units = gpd.GeoDataFrame(
        {"code": ["U1", None], "class": ["general", "general"], "name": ["南昌".encode().decode("latin-1"), "b"]},
        geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000)],
        crs=4548,
    )
    units["geometry"] = units.geometry.translate(400000, 3150000)
    pyogrio.write_dataframe(units, tmp_path / "units.gpkg")
    (tmp_path / "layers.yaml").write_text(
        "layers:\n  - {name: units, role: unit, path: units.gpkg, id_field: code, name_field: name, class_field: class}\n",
        encoding="utf-8",
    )
    result = run("layers", "check", tmp_path / "layers.yaml")
    assert result.exit_code == 2
    label = f"{tmp_path / 'units.gpkg'}: layer 'units'"
    assert result.stdout.splitlines() == [
        f"{label}: feature FID 2 has no code",
        f"{label}: field 'name' looks mis-decoded (e.g. {'南昌'.encode().decode('latin-1')!r}); set 'encoding: UTF-8' in the manifest",
    ]


def test_layers_check_lists_every_manifest_problem(run, tmp_path, sample_dir):
    shutil.copytree(sample_dir / "layers", tmp_path / "layers")
    frame = gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.box(115.9, 28.5, 116.0, 28.6)])
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        pyogrio.write_dataframe(frame, tmp_path / "layers" / "nocrs.shp")
    (tmp_path / "layers.yaml").write_text(
        "layers:\n  - {name: a, role: redline, path: layers/nocrs.shp}\n  - {name: b, role: cap, path: layers/gone.shp}\n",
        encoding="utf-8",
    )
    result = run("layers", "check", tmp_path / "layers.yaml")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        "layer 'a': layers/nocrs.shp has no CRS; add 'crs: EPSG:4490' (or the right code) to the entry"
    )
    assert lines[1].endswith("layer 'b': file layers/gone.shp not found (paths are relative to the manifest)")
