"""Terminal output in Chinese: screen's text under --lang zh or a zh locale, and siting's table."""

from __future__ import annotations

import json
import os
import re

import geopandas as gpd
import pyogrio
import pytest
import shapely

from threelines.engine.measure import M2_PER_MU
from threelines.report.i18n import reason_text, warning_text

#: English label words of the text output; none may be left in the Chinese output (rule ids aside).
ENGLISH_LABELS = [
    "industry", "kind", "area", "ha", "mu", "verdict", "unit", "units", "basis", "requirement", "information",
    "missing", "warning", "not given", "pass", "conditional", "reject", "priority", "key", "general", "projects",
    "screened", "outcome", "km2", "candidate", "zones", "wrote", "spatial_layout", "emission_control",
    "resource_efficiency", "risk_prevention", "redline", "quality", "cap", "project attribute", "from prose",
]  # fmt: skip


def english_left(text: str, ids: set[str]) -> list[str]:
    """The English label words in ``text`` once the rule ids and the bilingual sample mark are taken out."""
    text = "\n".join(line for line in text.splitlines() if not line.startswith("*** 示例数据"))
    for rule_id in sorted(ids, key=len, reverse=True):
        text = text.replace(rule_id, "")
    return [word for word in ENGLISH_LABELS if re.search(rf"(?<![A-Za-z_]){re.escape(word)}(?![A-Za-z_])", text, re.I)]


def rule_ids(run, path) -> set[str]:
    result = run("screen", path, "--format", "json", "--lang", "zh")
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    return {x["rule"] for d in docs for x in d["triggers"] + d["unresolved"]} | {
        r["clause"] for d in docs for r in d["requirements"]
    }


def test_a_pass_in_chinese(run, sample_dir):
    result = run("screen", sample_dir / "projects" / "P01.geojson", "--lang", "zh")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "*** 示例数据 — 合成图层（SAMPLE DATA — synthetic layers） ***",
        "",
        "P01  南昌县现代物流园通用仓储项目",
        "      行业 G5920 通用仓储 | 形态 面状 | 面积 12.00 公顷（180.0 亩）",
        "      结论  通过",
        "      单元  ZH36012130005 南昌县一般管控单元05（一般管控单元）100.0%",
    ]
    assert (
        "      [须落实要求] QY-03（污染物排放管控，全部单元）：新建项目主要污染物排放须取得总量指标，实行区域削减替代"
        in lines
    )
    assert (
        "      [须落实要求] YB-03（污染物排放管控，一般管控单元）：执行国家和地方污染物排放标准，落实排污许可制度"
        in lines
    )
    assert lines[-1] == "共筛查 1 个项目：通过 1 个，有条件准入 0 个，不予准入 0 个"


def test_a_conditional_in_chinese(run, sample_dir):
    result = run("screen", sample_dir / "projects" / "P04.geojson", "--lang", "zh")
    lines = result.stdout.splitlines()
    assert "      结论  有条件准入" in lines
    at = lines.index("      [有条件准入] redline-buffer（生态保护红线）：邻近生态保护红线")
    assert (
        lines[at + 1]
        == "          距生态保护红线“青岚湖湿地生态保护红线”325米；环评须评价对红线的影响，施工不得进入红线"
    )
    assert (
        lines[at + 2] == "          依据：《关于实施“三线一单”生态环境分区管控的指导意见（试行）》(环环评〔2021〕108号)"
    )
    assert lines[-1] == "共筛查 1 个项目：通过 0 个，有条件准入 1 个，不予准入 0 个"


def test_a_reject_with_information_missing_in_chinese(run, sample_dir):
    result = run("screen", sample_dir / "projects" / "P02.geojson", "--lang", "zh")
    lines = result.stdout.splitlines()
    assert "      结论  不予准入" in lines
    assert "      单元  ZH36012110016 南昌县优先保护单元16（优先保护单元）100.0%" in lines
    assert "      [不予准入] redline-overlap（生态保护红线）：占用生态保护红线" in lines
    assert "      [有条件准入] YX-02（空间布局约束）：准入清单（空间布局约束）" in lines
    assert "      [信息不足] groundwater-overdraft：项目属性 water_source（取水水源）未提供" in lines
    assert lines[-1] == "共筛查 1 个项目：通过 0 个，有条件准入 0 个，不予准入 1 个；其中 1 个信息不足"


def test_no_english_label_is_left(run, sample_dir):
    """All thirteen sample projects (every outcome, several units, clauses over two units, a point site)."""
    path = sample_dir / "projects.gpkg"
    result = run("screen", path, "--lang", "zh")
    assert result.exit_code == 0
    assert english_left(result.stdout, rule_ids(run, path)) == []
    assert "      [有条件准入] YB-02（空间布局约束）：准入清单（空间布局约束）" in result.stdout.splitlines()
    assert "印染项目须入园或配套集中污水处理设施（涉及单元 ZH36012130012、ZH36012130017）" in result.stdout
    # The same screening in English keeps its labels: the word list is not vacuous.
    english = run("screen", path, "--lang", "en").stdout
    assert {"industry", "kind", "verdict", "unit", "basis", "requirement", "priority"} <= set(
        english_left(english, set())
    )


def test_a_zh_locale_gives_chinese(run, sample_dir, monkeypatch):
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    chinese = run("screen", sample_dir / "projects" / "P04.geojson")
    assert "      结论  有条件准入" in chinese.stdout.splitlines()
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert "      结论  有条件准入" in run("screen", sample_dir / "projects" / "P04.geojson").stdout.splitlines()
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
    assert "      verdict  CONDITIONAL 有条件准入" in run("screen", sample_dir / "projects" / "P04.geojson").stdout


@pytest.mark.parametrize(
    ("reason", "chinese"),
    [
        ("project attribute 'emit_nox' is not given", "项目属性 emit_nox（氮氧化物排放量）未提供"),
        ("project attribute 'fuel', feature attribute 'limit' are not given", "项目属性 fuel（燃料）、要素属性 limit 未提供"),
        ("the project's industry code is not given", "项目行业代码未提供"),
        ("the project's industry code C26 is coarser than the rule's C2614; give its class code",
         "项目行业代码 C26 比规则的 C2614 粗，请给出小类代码"),
        ("layer 'pm25' has no data under the footprint", "图层 pm25 在项目范围内没有数据"),
        ("access-list clause for review: 须结合园区规划判定", "准入清单条款待人工判定：须结合园区规划判定"),
        ("cannot evaluate 'int(feature.name) > 1': no such overload", "规则条件 'int(feature.name) > 1' 无法计算：no such overload"),
        ("'project.fuel' gives 'coal', not true or false", "规则条件 'project.fuel' 的结果为 'coal'，不是真或假"),
        ("须结合园区规划判定", "须结合园区规划判定"),  # a clause's own words stay as written
    ],
)  # fmt: skip
def test_unresolved_reasons_in_chinese(reason, chinese):
    assert reason_text(reason, "zh") == chinese
    assert reason_text(reason, "en") == reason


def test_the_unit_gap_warning_in_chinese():
    warning = (
        "3.5% of the footprint lies outside every control unit of layer 'units' (1,234.5 m2, its largest part around "
        "lon 115.900000, lat 28.500000): rules cannot see it; check the footprint's CRS and the manifest"
    )
    assert warning_text(warning, "zh") == (
        "项目范围的 3.5% 位于图层 units 的全部管控单元之外（1,234.5 平方米，最大一块在经度 115.900000、纬度 28.500000 附近）："
        "规则判断不到这部分；请核对项目的坐标系和图层清单"
    )


@pytest.fixture
def gbk_region(tmp_path, sample_dir):
    """A square around the chemical park as a GBK shapefile without .cpg, its name in Chinese."""
    units = pyogrio.read_dataframe(sample_dir / "layers" / "units.gpkg", layer="units")
    centre = units[units.code == "ZH36012120002"].to_crs(4490).geometry.iloc[0].centroid
    square = shapely.box(centre.x - 0.03, centre.y - 0.03, centre.x + 0.03, centre.y + 0.03)
    frame = gpd.GeoDataFrame({"name": ["小蓝园区周边选址范围"]}, geometry=[square], crs=4490)
    path = tmp_path / "region" / "region.shp"
    path.parent.mkdir()
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    os.remove(path.with_suffix(".cpg"))
    assert "小蓝".encode("gbk") in path.with_suffix(".dbf").read_bytes()
    return path


def test_siting_table_in_chinese(run, tmp_path, gbk_region):
    out = tmp_path / "z.gpkg"
    result = run("siting", "--industry", "C2614", "--region", gbk_region, "--encoding", "gbk", "--min-area", "10",
                 "-o", out, "--lang", "zh")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    zones = pyogrio.read_dataframe(out, layer="zones").groupby("outcome")["area_m2"].sum()
    assert lines[0] == "*** 示例数据 — 合成图层（SAMPLE DATA — synthetic layers） ***"
    assert lines[1] == "结果           平方千米         公顷             亩"
    assert lines[2] == f"通过         {0:>10,.2f} {0:>12,.2f} {0:>14,.0f}"
    conditional, reject = zones["conditional"], zones["reject"]
    assert (
        lines[3]
        == f"有条件准入   {conditional / 1e6:>10,.2f} {conditional / 1e4:>12,.2f} {conditional / M2_PER_MU:>14,.0f}"
    )
    assert lines[4] == f"不予准入     {reject / 1e6:>10,.2f} {reject / 1e4:>12,.2f} {reject / M2_PER_MU:>14,.0f}"
    assert lines[5] == "候选地块 1 处："
    assert re.fullmatch(
        r"  1\. 有条件准入，[\d,]+\.\d\d 公顷，位于东经 116\.\d{5}、北纬 28\.\d{5}，所在单元 ZH36012120002", lines[6]
    )
    assert re.fullmatch(r"叠加切分 \d+ 块，合并为 \d+ 个分区；已写出 .*z\.gpkg、.*z\.png、.*z\.html", lines[7])
    assert english_left(result.stdout.replace(str(tmp_path), ""), set()) == []
    # The region is named in the report by its features' names, read as GBK.
    assert f"{gbk_region} (小蓝园区周边选址范围)" in (tmp_path / "z.html").read_text("utf-8")


def test_siting_encoding_is_the_region_files(run, tmp_path, gbk_region):
    """A wrong --encoding shows in the names read: the option reaches the region file."""
    out = tmp_path / "latin.gpkg"
    result = run("-q", "siting", "--industry", "C2614", "--region", gbk_region, "--encoding", "latin1", "-o", out)
    assert result.exit_code == 0, result.stderr
    page = out.with_suffix(".html").read_text("utf-8")
    assert "小蓝园区周边选址范围" not in page
    assert "小蓝园区周边选址范围".encode("gbk").decode("latin1") in page


def test_siting_help_lists_only_what_siting_uses(run):
    text = run("siting", "--help").stdout
    flags = set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", text, re.M))
    assert flags == {
        "--layers", "--rules", "--kind", "--industry", "--fuel", "--water-source", "--emit-so2", "--emit-nox",
        "--emit-vocs", "--emit-pm", "--emit-cod", "--emit-nh3n", "--water-m3", "--region", "--adcode", "--crs",
        "--encoding", "--min-area", "--output", "--lang", "--overwrite", "--verbose", "--quiet", "--help",
    }  # fmt: skip
    flat = " ".join(text.split())
    assert "--crs TEXT CRS of the --region file (overrides the file's)" in flat
    assert "--encoding TEXT Attribute encoding of the --region file, e.g. GBK for a shapefile without .cpg." in flat
    assert "--kind [area|linear|point] Kind of project the rules see (default: area" in flat
    assert "footprint" not in flat
    assert "from the geometry" not in flat


def test_siting_crs_and_encoding_need_a_region(run, tmp_path):
    result = run("siting", "--industry", "C2614", "--encoding", "gbk", "-o", tmp_path / "z.gpkg")
    assert result.exit_code == 2
    assert "--encoding describes the --region file; give --region" in result.stderr
