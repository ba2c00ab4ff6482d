"""Every sample project's verdict and triggers, through the library API and the CLI."""

from __future__ import annotations

import json

import jsonschema
import pytest

from threelines import screen

# id -> (verdict, rule ids that fire, in rule-file order)
EXPECTED = {
    "P01": ("pass", []),
    "P02": ("reject", ["redline-overlap", "YX-02"]),
    "P03": ("conditional", ["redline-overlap-linear"]),
    "P04": ("conditional", ["redline-buffer"]),
    "P05": ("reject", ["chem-outside-park"]),
    "P06": ("conditional", ["chem-in-park", "air-capacity", "ZD-01", "ZD-02"]),
    "P07": ("reject", ["heavy-industry-priority", "YX-01", "SY-01"]),
    "P08": ("conditional", ["air-capacity", "air-capacity", "pm25-exceed"]),
    "P09": ("reject", ["fuel-ban"]),
    "P10": ("reject", ["groundwater-overdraft", "water-use-cap"]),
    "P11": ("conditional", ["water-capacity", "water-capacity", "YB-02"]),
    "P12": ("pass", []),
    "P13": ("reject", ["air-capacity", "air-capacity", "air-capacity", "pm25-exceed"]),
}


@pytest.fixture(scope="module")
def sample_result(sample_dir):
    return {v.project["id"]: v for v in screen(sample_dir / "projects.gpkg").verdicts}


@pytest.mark.parametrize(("pid", "verdict", "rules"), [(k, *v) for k, v in EXPECTED.items()])
def test_sample_verdicts(sample_result, pid, verdict, rules):
    result = sample_result[pid]
    assert result.verdict == verdict
    assert [t.rule for t in result.triggers] == rules


def test_red_line_overlap_evidence(sample_result):
    trigger = sample_result["P02"].triggers[0]
    assert trigger.feature_id == "HX360121010"
    assert trigger.feature_name == "南昌县水源涵养林生态保护红线03"
    assert trigger.overlap_m2 == pytest.approx(64693, rel=1e-3)
    assert trigger.overlap_ha == pytest.approx(trigger.overlap_m2 / 1e4)
    assert trigger.overlap_mu == pytest.approx(trigger.overlap_m2 / (10000 / 15))
    assert trigger.overlap_ratio == pytest.approx(0.411, abs=1e-3)
    assert trigger.distance_m == 0
    assert "6.47 ha (97.0 mu, 41.1% of the site)" in trigger.message
    assert trigger.basis.startswith("《关于划定并严守生态保护红线的若干意见》")


def test_buffer_distance_and_message(sample_result):
    (trigger,) = sample_result["P04"].triggers
    assert trigger.outcome == "conditional"
    assert trigger.distance_m == pytest.approx(325, abs=1)
    assert trigger.overlap_m2 == 0
    assert trigger.message.startswith("325 m from the red line 青岚湖湿地生态保护红线")


def test_linear_project_is_buffered_by_width(sample_result):
    p03 = sample_result["P03"]
    assert p03.project["kind"] == "linear"
    assert p03.project["width"] == 30
    # 6 km of road, 30 m wide, flat ends
    assert p03.project["area_m2"] == pytest.approx(6000 * 30, rel=2e-3)
    assert p03.triggers[0].overlap_m2 == pytest.approx(11512, rel=1e-3)


def test_capacity_offsets_are_computed(sample_result):
    nox, vocs = (t for t in sample_result["P08"].triggers if t.rule == "air-capacity")
    assert (nox.pollutant, nox.project_load, nox.remaining_load, nox.offset_ratio, nox.required_offset) == (
        "nox",
        2.0,
        120.0,
        2.0,
        4.0,
    )
    assert nox.outcome == "conditional"
    assert nox.message.startswith(
        "NOx 2 t/a: offset 4 t/a (2x) required in 南昌县北部大气环境质量不达标区; 倍量削减替代"
    )
    assert vocs.message.startswith("VOCs 8.5 t/a: offset 17 t/a (2x) required")
    cod = sample_result["P11"].triggers[0]
    assert cod.message == (
        "COD 12 t/a: offset 24 t/a (2x) required in 抚河南昌县控制单元; 抚河南昌县控制单元 misses its class III target (now IV)"
    )


def test_capacity_exceeded_rejects(sample_result):
    so2, nox, pm = (t for t in sample_result["P13"].triggers if t.rule == "air-capacity")
    assert [(t.pollutant, t.outcome) for t in (so2, nox, pm)] == [
        ("so2", "reject"),
        ("nox", "reject"),
        ("pm", "conditional"),
    ]
    assert nox.message.startswith(
        "NOx 150 t/a exceeds the remaining capacity of 120 t/a in 南昌县北部大气环境质量不达标区"
    )
    assert (nox.project_load, nox.remaining_load, nox.required_offset) == (150.0, 120.0, None)
    assert pm.required_offset == 24.0


def test_raster_rule_shows_the_statistic(sample_result):
    trigger = sample_result["P08"].triggers[-1]
    assert (trigger.rule, trigger.statistic, trigger.layer) == ("pm25-exceed", "mean", "pm25")
    assert trigger.value == pytest.approx(40.0, abs=0.05)
    assert trigger.message.startswith("Annual mean PM2.5 over the site is 40.0 ug/m3 (1 grid cell(s))")
    assert trigger.basis == "《环境空气质量标准》(GB 3095-2012) 二级浓度限值"
    # P09 burns coal in the cleaner south: no PM2.5 trigger.
    assert "pm25-exceed" not in [t.rule for t in sample_result["P09"].triggers]


def test_access_list_clauses(sample_result):
    p07 = {t.rule: t for t in sample_result["P07"].triggers}
    assert p07["SY-01"].outcome == "reject"
    assert p07["SY-01"].dimension == "spatial_layout"
    assert p07["SY-01"].message == "饮用水水源二级保护区内禁止新建、改建、扩建排放污染物的建设项目"
    assert p07["SY-01"].basis == "《中华人民共和国水污染防治法》第六十六条"
    assert p07["SY-01"].feature_id == "ZH36012110001"
    yb02 = sample_result["P11"].triggers[-1]
    assert yb02.message.endswith("(units ZH36012130012, ZH36012130017)")
    assert yb02.overlap_ratio == pytest.approx(1.0)
    # Requirements apply whatever the verdict: a pass still lists them.
    p01 = sample_result["P01"]
    assert p01.verdict == "pass"
    assert [(r.clause, r.unit, r.dimension) for r in p01.requirements] == [
        ("QY-03", "*", "emission_control"),
        ("QY-07", "*", "resource_efficiency"),
        ("YB-03", "general", "emission_control"),
        ("YB-06", "general", "resource_efficiency"),
    ]


def test_chemical_outside_park_has_no_feature(sample_result):
    (trigger,) = sample_result["P05"].triggers
    assert trigger.feature_id is None
    assert trigger.overlap_m2 is None
    assert (
        trigger.message == "New chemical project (C2614 有机化学原料制造) not wholly inside a compliant industrial park"
    )


def test_units_and_shares(sample_result):
    units = sample_result["P03"].units
    assert [u.class_ for u in units] == ["general", "priority"]
    assert sum(u.share for u in units) == pytest.approx(1.0, abs=1e-6)
    assert sample_result["P06"].units[0].code == "ZH36012120002"
    assert sample_result["P06"].units[0].class_ == "key"
    # a point lies wholly in one unit
    (point_unit,) = sample_result["P12"].units
    assert point_unit.share == 1.0
    assert sample_result["P12"].project["area_m2"] == 0


def test_missing_attribute_is_reported_where_it_matters(sample_result):
    # P02 lies in the groundwater over-extraction zone and does not say where its water comes from.
    notes = sample_result["P02"].unresolved
    assert [(n.rule, n.reason) for n in notes] == [
        ("groundwater-overdraft", "project attribute 'water_source' is not given")
    ]
    # P01 is in no cap zone: nothing to ask.
    assert sample_result["P01"].unresolved == []


def test_json_lines_match_the_contract(run, sample_dir, contract):
    result = run("screen", sample_dir / "projects.gpkg", "--format", "json")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 13
    for line in lines:
        doc = json.loads(line)
        jsonschema.validate(doc, contract)
        assert doc["verdict"] == EXPECTED[doc["project"]["id"]][0]


def test_single_project_json_is_one_object(run, sample_dir, contract):
    result = run("screen", sample_dir / "projects" / "P02.geojson", "--format", "json", "--indent", "2")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, contract)
    assert doc["verdict"] == "reject"
    trigger = doc["triggers"][0]
    assert trigger["rule"] == "redline-overlap"
    assert trigger["layer"] == "redline"
    assert trigger["dimension"] == "redline"
    assert trigger["overlap_ha"] == pytest.approx(6.4693, abs=1e-3)
    assert doc["project"]["industry_name"] == "其他游览景区管理"


def test_text_output(run, sample_dir):
    result = run("screen", sample_dir / "projects.gpkg")
    assert result.exit_code == 0
    assert "P05  年产5万吨有机化学原料项目" in result.stdout
    assert "verdict  REJECT 不予准入" in result.stdout
    assert result.stdout.rstrip().endswith(
        "13 projects screened: 2 pass, 5 conditional, 6 reject; 1 with information missing"
    )


def test_default_is_the_bundled_sample(run, sample_dir):
    """The shapefile in Gauss-Kruger coordinates screens without --layers/--rules."""
    result = run("screen", sample_dir / "site" / "site.shp", "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["project"]["id"] == "P05"
    assert doc["verdict"] == "reject"


@pytest.mark.parametrize(
    ("fail_on", "pid", "code"),
    [("reject", "P02", 1), ("reject", "P04", 0), ("conditional", "P04", 1), ("conditional", "P01", 0)],
)
def test_fail_on_exit_codes(run, sample_dir, fail_on, pid, code):
    result = run("screen", sample_dir / "projects" / f"{pid}.geojson", "--fail-on", fail_on)
    assert result.exit_code == code


def test_output_file_is_not_overwritten(run, sample_dir, tmp_path):
    out = tmp_path / "out.json"
    site = sample_dir / "projects" / "P01.geojson"
    assert run("screen", site, "--format", "json", "-o", out).exit_code == 0
    assert json.loads(out.read_text("utf-8"))["verdict"] == "pass"
    again = run("screen", site, "-o", out)
    assert again.exit_code == 2
    assert again.stderr.strip() == f"Error: {out}: exists; give --overwrite to replace it, or another -o"
    assert json.loads(out.read_text("utf-8"))["verdict"] == "pass"
    assert run("screen", site, "--format", "text", "-o", out, "--overwrite").exit_code == 0
    assert out.read_text("utf-8").startswith("*** SAMPLE DATA — synthetic layers ***\n\nP01")


def test_options_override_file_attributes(run, sample_dir):
    # P01's site with a chemical industry code becomes a chemical plant outside a park.
    result = run("screen", sample_dir / "projects" / "P01.geojson", "--industry", "2614", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["project"]["industry"] == "C2614"
    assert [t["rule"] for t in doc["triggers"]] == ["chem-outside-park"]
