"""threelines init: a published package (folder, zip, gdb, GBK shapefiles, Chinese headers, XLSX list) -> a jurisdiction.

Test packages are written here, in tmp_path: two control units side by side near 116E 28.5N, a red line.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "data" / "sample" / "package"

#: Two units, about 2 km x 2 km each, and a red line in the far corner of the second.
U1 = shapely.box(116.00, 28.50, 116.02, 28.52)
U2 = shapely.box(116.02, 28.50, 116.04, 28.52)
RED = shapely.box(116.035, 28.515, 116.038, 28.518)
PINYIN = {"code": "HJZHGKDYBM", "name": "HJZHGKDYMC", "class": "ZHGKDYFL", "prov": "PROV", "city": "CITY",
          "area": "AREA", "kj": "KJBJYS", "pw": "PWWPFGK"}  # fmt: skip
CHINESE = {"code": "环境管控单元编码", "name": "环境管控单元名称", "class": "管控单元分类", "prov": "省", "city": "市",
           "area": "区县", "kj": "空间布局约束", "pw": "污染物排放管控"}  # fmt: skip


def units_frame(headers=PINYIN, codes=("ZH36012120001", "ZH36012130001"), classes=("2", "3"), prose=True, geoms=None):
    data = {
        headers["code"]: list(codes),
        headers["name"]: ["测试工业园区重点管控单元", "测试县一般管控单元01"],
        headers["class"]: list(classes),
        headers["prov"]: ["江西省", "江西省"],
        headers["city"]: ["南昌市", "南昌市"],
        headers["area"]: ["南昌县", "南昌县"],
    }
    if prose:
        data[headers["kj"]] = [
            "1.禁止新建焦化项目。2.化工项目须入驻认定的化工园区",
            "①禁止新建电镀项目②现有企业逐步退出",
        ]
        data[headers["pw"]] = ["新建项目须取得总量指标", ""]
    return gpd.GeoDataFrame(data, geometry=list(geoms or (U1, U2)), crs=4490)


def redline_frame():
    return gpd.GeoDataFrame({"编号": ["HX001"], "名称": ["测试湖湿地生态保护红线"]}, geometry=[RED], crs=4490)


def write_package(folder: Path, units: gpd.GeoDataFrame | None = None, *, gbk=False, redline=True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    units = units_frame() if units is None else units
    if gbk:  # a GBK dbf without .cpg, as agencies deliver it
        pyogrio.write_dataframe(units, folder / "单元.shp", encoding="GBK")
        (folder / "单元.cpg").unlink(missing_ok=True)
    else:
        pyogrio.write_dataframe(units, folder / "units.gpkg", layer="units")
    if redline:
        pyogrio.write_dataframe(redline_frame(), folder / "生态保护红线.gpkg")
    (folder / "说明.txt").write_text("数据说明", encoding="utf-8")
    return folder


def site(tmp_path: Path, geom, name: str, industry: str, **attrs) -> Path:
    path = tmp_path / f"{name}.geojson"
    frame = gpd.GeoDataFrame({"id": [name], "industry": [industry], **{k: [v] for k, v in attrs.items()}},
                             geometry=[geom], crs=4490)  # fmt: skip
    pyogrio.write_dataframe(frame, path, driver="GeoJSON")
    return path


def screen(run, layers: Path, footprint: Path) -> dict:
    result = run("screen", "--layers", layers, footprint, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


IN_U1 = shapely.box(116.002, 28.502, 116.004, 28.504)
IN_U2 = shapely.box(116.021, 28.501, 116.023, 28.503)


# -- The sample as a package --------------------------------------------------------------------


def test_sample_package_round_trip_gives_the_same_verdicts(run, tmp_path, sample_dir):
    out = tmp_path / "nanchang"
    result = run("init", PACKAGE, "-o", out, "--published", "2026-01-01", "--data-version", "1.0")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{out}: 江西省南昌市南昌县 (360121): layers air, redline, units, water;")
    assert sorted(p.name for p in out.iterdir()) == [
        "IMPORT.md",
        "access_list.csv",
        "layers",
        "layers.yaml",
        "rules.yaml",
    ]
    projects = sample_dir / "projects.gpkg"
    hand = [json.loads(line) for line in run("screen", projects, "--format", "json").stdout.splitlines()]
    got = run("screen", "--layers", out / "layers.yaml", projects, "--format", "json")
    assert got.exit_code == 0, got.stderr
    imported = [json.loads(line) for line in got.stdout.splitlines()]
    assert len(hand) == len(imported) == 13
    assert [(v["project"]["id"], v["verdict"]) for v in imported] == [(v["project"]["id"], v["verdict"]) for v in hand]
    assert [v["verdict"] for v in imported].count("reject") == 6
    p13 = imported[12]
    assert p13["jurisdiction"] == {"name": "江西省南昌市南昌县", "adcode": "360121", "version": "1.0",
                                   "published": "2026-01-01"}  # fmt: skip
    # every level of the list is in the clause table: province, city, county and unit
    assert {c["level"] for c in p13["clauses"]} == {"province", "city", "county", "unit"}
    coal = next(c for c in p13["clauses"] if c["text"] == "禁止新建、扩建燃煤发电、燃煤热电联产项目")
    assert (coal["finding"], coal["source"], coal["matched"]) == ("reject", "prose", ["燃煤发电", "燃煤热电联产"])
    assert all(c["unit"] is None for c in p13["clauses"] if c["level"] != "unit")
    # a province clause with a condition on location: for review, for every project of the province
    for verdict in imported:
        if verdict["project"]["industry"].startswith("C26"):
            shore = [c for c in verdict["clauses"] if c["text"].startswith("禁止在长江干流和主要支流岸线1公里")]
            assert [c["finding"] for c in shore] == ["review"]
    assert "SAMPLE DATA" not in got.stdout


def test_committed_sample_package_is_what_the_script_writes(tmp_path, sample_dir):
    import importlib.util

    spec = importlib.util.spec_from_file_location("sample_package", ROOT / "scripts" / "sample_package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_package(sample_dir, tmp_path / "package")
    names = sorted(p.name for p in PACKAGE.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "package").iterdir())
    assert not any(n.endswith(".cpg") for n in names)  # GBK without .cpg, as agencies deliver it
    for name in names:
        if name.endswith(".shp"):
            committed = pyogrio.read_dataframe(PACKAGE / name, encoding="GBK")
            written = pyogrio.read_dataframe(tmp_path / "package" / name, encoding="GBK")
            assert committed.drop(columns="geometry").equals(written.drop(columns="geometry")), name
            assert committed.geometry.geom_equals_exact(written.geometry, 1e-9).all(), name
    lists = [pd.read_excel(p / "生态环境准入清单.xlsx", dtype=str) for p in (PACKAGE, tmp_path / "package")]
    assert lists[0].equals(lists[1])
    assert list(lists[0]["层级"][:3]) == ["province", "city", "county"]


def test_manifest_jurisdiction_block_is_checked(run, tmp_path, sample_dir):
    text = (sample_dir / "layers.yaml").read_text("utf-8").replace("path: layers/", f"path: {sample_dir}/layers/")
    manifest = tmp_path / "layers.yaml"
    manifest.write_text(text.replace('adcode: "360121"', 'adcode: "3601"'), encoding="utf-8")
    result = run("screen", "--layers", manifest, sample_dir / "projects" / "P01.geojson")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {manifest}:")
    assert "3601" in result.stderr
    manifest.write_text(text.split("\n# Whose published data")[0] + "\n", encoding="utf-8")
    doc = json.loads(
        run("screen", "--layers", manifest, sample_dir / "projects" / "P01.geojson", "--format", "json").stdout
    )
    assert doc["jurisdiction"] is None


def test_import_report_lists_recognised_and_unrecognised(run, tmp_path):
    out = tmp_path / "j"
    assert run("init", write_package(tmp_path / "pkg"), "-o", out).exit_code == 0
    report = (out / "IMPORT.md").read_text("utf-8")
    assert "| units.gpkg | control units (环境管控单元) | 2 | AREA, CITY, HJZHGKDYBM, HJZHGKDYMC, KJBJYS, PROV, PWWPFGK, " \
           "ZHGKDYFL | — |" in report  # fmt: skip
    assert "| 生态保护红线.gpkg | ecological protection red lines (生态保护红线) | 1 | 名称, 编号 | — |" in report
    assert "| 说明.txt | **not recognised** (not a data file: not read) | 0 | — | — |" in report
    assert "## Clauses to review (待审)" in report
    assert "现有企业逐步退出" in report


def test_rules_check_lists_prose_clauses_for_review(run, tmp_path):
    out = tmp_path / "j"
    assert run("init", write_package(tmp_path / "pkg"), "-o", out).exit_code == 0
    result = run("rules", "check", "--layers", out / "layers.yaml")
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    table = out / "access_list.csv"
    assert (
        f"{table}:2: clause 'ZH36012120001-KJ-1': read from prose as reject for C2521 (焦化): 禁止新建焦化项目" in lines
    )
    assert f"{table}:6: clause 'ZH36012130001-KJ-2': review (not decided: no 禁止 / 限制 / 要求 wording found): " \
           "现有企业逐步退出" in lines  # fmt: skip
    assert lines[-2] == "5 clauses read from prose or left for review: check them"
    assert lines[-1].endswith("rules and 5 access-list clauses, no problems")


# -- Packages in the forms they come in ------------------------------------------------------------


@pytest.mark.parametrize("form", ["pinyin", "chinese", "gbk", "gbk-option", "zip", "gpkg"])
def test_package_forms_screen_by_their_prose(run, tmp_path, form):
    units = units_frame(CHINESE if form == "chinese" else PINYIN)
    folder = write_package(tmp_path / "pkg", units, gbk=form.startswith("gbk"))
    package = folder
    options = ["--encoding", "GBK"] if form == "gbk-option" else []
    if form == "gpkg":  # one GeoPackage with both layers
        package = tmp_path / "三线一单.gpkg"
        pyogrio.write_dataframe(units, package, layer="环境管控单元")
        pyogrio.write_dataframe(redline_frame(), package, layer="生态保护红线")
    if form == "zip":
        package = tmp_path / "pkg.zip"
        with zipfile.ZipFile(package, "w") as zf:
            for f in folder.iterdir():
                zf.write(f, f"数据包/{f.name}")
    out = tmp_path / "j"
    result = run("init", package, "-o", out, *options)
    assert result.exit_code == 0, result.stderr
    assert "layers redline, units; 5 clauses, 1 to review" in result.stdout
    layers = out / "layers.yaml"
    coke = screen(run, layers, site(tmp_path, IN_U1, "coke", "C2521"))
    assert coke["verdict"] == "reject"
    assert coke["units"][0]["name"] == "测试工业园区重点管控单元"  # GBK decoded
    (trigger,) = [t for t in coke["triggers"] if t["rule"].startswith("ZH36012120001")]
    assert trigger["message"] == "禁止新建焦化项目 [from prose: 焦化]"
    plating = screen(run, layers, site(tmp_path, IN_U2, "plating", "C3360"))
    assert plating["verdict"] == "reject"
    warehouse = screen(run, layers, site(tmp_path, IN_U2, "store", "G5920"))
    assert warehouse["verdict"] == "pass"
    # the clause the tool cannot decide is listed for review, and the screening is not complete without it
    assert [(c["text"], c["finding"]) for c in warehouse["clauses"]] == [("现有企业逐步退出", "review")]
    assert [u["rule"] for u in warehouse["unresolved"]] == ["ZH36012130001-KJ-2"]
    assert warehouse["jurisdiction"]["name"] == "江西省南昌市南昌县"


def test_xlsx_list_at_three_levels(run, tmp_path):
    folder = write_package(tmp_path / "pkg", units_frame(prose=False))
    pd.DataFrame({
        "环境管控单元编码": ["360000", "南昌市", "360121", "ZH36012130001"],
        "空间布局约束": ["1.禁止新建焦化项目", "禁止新建制浆造纸项目", "严格控制水泥行业规模", "①禁止新建电镀项目"],
        "环境风险防控": ["", "", "应编制突发环境事件应急预案", ""],
    }).to_excel(folder / "准入清单.xlsx", index=False)  # fmt: skip
    out = tmp_path / "j"
    result = run("init", folder, "-o", out)
    assert result.exit_code == 0, result.stderr
    cement = screen(run, out / "layers.yaml", site(tmp_path, IN_U2, "cement", "C3011"))
    assert cement["verdict"] == "conditional"
    assert [(c["level"], c["unit"], c["finding"]) for c in cement["clauses"]] == [
        ("county", None, "conditional"),
        ("county", None, "requirement"),
    ]
    paper = screen(run, out / "layers.yaml", site(tmp_path, IN_U1, "paper", "C2221"))
    assert [(c["level"], c["finding"]) for c in paper["clauses"]] == [("city", "reject"), ("county", "requirement")]
    plating = screen(run, out / "layers.yaml", site(tmp_path, IN_U2, "plating", "C3360"))
    assert [(c["level"], c["unit"], c["finding"]) for c in plating["clauses"]] == [
        ("county", None, "requirement"),
        ("unit", "ZH36012130001", "reject"),
    ]


def test_file_geodatabase(run, tmp_path):
    gdb = tmp_path / "三线一单.gdb"
    pyogrio.write_dataframe(units_frame(), gdb, layer="HJGKDY", driver="OpenFileGDB")
    pyogrio.write_dataframe(redline_frame(), gdb, layer="STBHHX_生态保护红线", driver="OpenFileGDB")
    out = tmp_path / "j"
    result = run("init", gdb, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "layers redline, units;" in result.stdout
    doc = screen(run, out / "layers.yaml", site(tmp_path, RED.buffer(-0.0005), "in-red", "G5920"))
    assert [t["rule"] for t in doc["triggers"]] == ["redline-overlap"]
    assert doc["verdict"] == "reject"


def test_two_unit_layers_need_units_option(run, tmp_path):
    folder = write_package(tmp_path / "pkg")
    pyogrio.write_dataframe(units_frame(), folder / "old_units.gpkg")
    out = tmp_path / "j"
    result = run("init", folder, "-o", out)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: 2 layers look like control units (old_units.gpkg, units.gpkg); name the one to use with --units FILE\n"
    )
    assert not out.exists()
    assert run("init", folder, "-o", out, "--units", "units.gpkg").exit_code == 0


def test_existing_folder_needs_overwrite(run, tmp_path):
    folder = write_package(tmp_path / "pkg")
    out = tmp_path / "j"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    result = run("init", folder, "-o", out)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {out}: exists; give --overwrite to replace it, or another -o folder\n"
    assert (out / "keep.txt").exists()
    assert run("init", folder, "-o", out, "--overwrite").exit_code == 0
    assert not (out / "keep.txt").exists()
    assert (out / "layers.yaml").exists()


# -- The bad-package corpus: exit 2, one clear line, nothing written --------------------------------


def _no_code(folder):
    write_package(folder, units_frame().drop(columns=["HJZHGKDYBM"]))


def _twice(folder):
    write_package(folder, units_frame(codes=("ZH36012120001", "ZH36012120001")))


def _empty_code(folder):
    write_package(folder, units_frame(codes=("ZH36012120001", "")))


def _bad_class(folder):
    write_package(folder, units_frame(classes=("2", "重点区")))


def _overlap(folder):
    write_package(folder, units_frame(geoms=(U1, shapely.box(116.01, 28.50, 116.04, 28.52))))


def _no_crs(folder):
    write_package(folder, gbk=True)
    (folder / "单元.prj").unlink()


def _unknown_unit(folder):
    write_package(folder, units_frame(prose=False))
    pd.DataFrame({"单元编码": ["ZH36012199999"], "空间布局约束": ["禁止新建焦化项目"]}).to_excel(
        folder / "清单.xlsx", index=False
    )


BAD = [
    (_no_code, "units.gpkg: looks like the control units but has no code field (one of HJZHGKDYBM, "),
    (_twice, "units.gpkg: unit code 'ZH36012120001' is used by 2 features; codes must be unique"),
    (_empty_code, "units.gpkg: feature 1 (0-based) has an empty unit code (HJZHGKDYBM); fill it in"),
    (_bad_class, "units.gpkg: class value '重点区' of unit ZH36012130001 (ZHGKDYFL) is not 1 / 2 / 3 or"),
    (_overlap, "units.gpkg: units ZH36012120001 and ZH36012130001 overlap by "),
    (_no_crs, "单元.shp: has no CRS (a shapefile needs its .prj); give it with --crs, e.g. --crs 4490"),
    (_unknown_unit, "清单.xlsx:2: 单元编码 'ZH36012199999' is not a unit code of the unit layer, nor a province"),
]


@pytest.mark.parametrize(("make", "message"), BAD, ids=[m.__name__.strip("_") for m, _ in BAD])
def test_bad_packages(run, tmp_path, make, message):
    folder = tmp_path / "pkg"
    make(folder)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "j"
    result = run("init", folder, "-o", out)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {message}")
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no half-written folder left behind


def test_missing_parent_folder_and_bad_options(run, tmp_path):
    folder = write_package(tmp_path / "pkg")
    result = run("init", folder, "-o", tmp_path / "no" / "j")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {tmp_path / 'no' / 'j'}: the folder {tmp_path / 'no'} does not exist; create it first "
        "(nothing is written)\n"
    )
    assert not (tmp_path / "no").exists()
    result = run("init", folder, "-o", tmp_path / "j", "--units", "nothing.shp")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --units nothing.shp: no layer of the package has that name; layers: ")
    result = run("init", tmp_path / "missing.zip", "-o", tmp_path / "j")
    assert result.stderr == f"Error: {tmp_path / 'missing.zip'}: not found; give the package's folder, zip, .gdb, " \
                            ".gpkg or list table\n"  # fmt: skip
    (tmp_path / "bad.zip").write_bytes(b"PK not a zip")
    result = run("init", tmp_path / "bad.zip", "-o", tmp_path / "j")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {tmp_path / 'bad.zip'}: not a readable zip (")
    assert not (tmp_path / "j").exists()


def test_zip_bomb_is_refused(run, tmp_path):
    bomb = tmp_path / "pkg.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("units.csv", b"0" * 5_000_000)
    result = run("init", bomb, "-o", tmp_path / "j")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {bomb}: member units.csv expands ")
    assert result.stderr.endswith("times, more than the limit of 200; it looks like a zip bomb\n")
    assert not (tmp_path / "j").exists()


def test_no_crs_is_settled_by_the_crs_option(run, tmp_path):
    _no_crs(tmp_path / "pkg")
    assert run("init", tmp_path / "pkg", "-o", tmp_path / "j", "--crs", "4490").exit_code == 0


# -- No silent sample ----------------------------------------------------------------------------


def test_layers_from_threelines_toml_then_the_sample_with_a_notice(run, tmp_path, monkeypatch, sample_dir):
    out = tmp_path / "j"
    assert run("init", write_package(tmp_path / "pkg"), "-o", out).exit_code == 0
    footprint = site(tmp_path, IN_U1, "coke", "C2521")
    monkeypatch.delenv("THREELINES_LAYERS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "threelines.toml").write_text(f'layers = "{out / "layers.yaml"}"\n', encoding="utf-8")
    result = run("screen", footprint, "--format", "json")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert json.loads(result.stdout)["jurisdiction"]["name"] == "江西省南昌市南昌县"
    (work / "threelines.toml").unlink()
    result = run("screen", sample_dir / "projects" / "P01.geojson", "--format", "json")
    assert result.exit_code == 0
    assert result.stderr.count("\n") == 1
    assert "screening against the bundled SAMPLE DATA — synthetic layers" in result.stderr
    assert json.loads(result.stdout)["jurisdiction"]["sample"] == "SAMPLE DATA — synthetic layers"
    text = run("screen", sample_dir / "projects" / "P01.geojson").stdout
    assert text.startswith("*** SAMPLE DATA — synthetic layers ***\n")


def test_sample_mark_in_html_and_markdown(run, tmp_path, sample_dir):
    for name in ("p.html", "p.md"):
        assert (
            run("screen", sample_dir / "projects" / "P06.geojson", "-o", tmp_path / name, "--lang", "zh").exit_code == 0
        )
        page = (tmp_path / name).read_text("utf-8")
        assert "SAMPLE DATA — synthetic layers" in page
        assert "生态环境准入清单符合性分析表" in page
        assert "符合性分析（咨询单位填写）" in page
        assert "化工项目须符合园区产业定位和规划环评要求，入驻认定的化工园区" in page


def test_sample_mark_in_the_evidence_layers(run, tmp_path, sample_dir):
    out = tmp_path / "p02.gpkg"
    assert run("screen", sample_dir / "projects" / "P02.geojson", "-o", out).exit_code == 0
    frame = pyogrio.read_dataframe(out, layer="evidence_4490")
    assert set(frame["data"]) == {"SAMPLE DATA — synthetic layers"}
    result = run("screen", sample_dir / "projects" / "P02.geojson", "--format", "geojson")
    assert {f["properties"]["data"] for f in json.loads(result.stdout)["features"]} == {
        "SAMPLE DATA — synthetic layers"
    }


def test_site_outside_the_jurisdiction_names_it(run, tmp_path):
    out = tmp_path / "j"
    assert run("init", write_package(tmp_path / "pkg"), "-o", out).exit_code == 0
    far = site(tmp_path, shapely.box(118.0, 30.0, 118.01, 30.01), "far", "G5920")
    result = run("screen", "--layers", out / "layers.yaml", far)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {far}: project 'far': lies outside the layers of 江西省南昌市南昌县 ({out / 'layers.yaml'}); "
        "give the layers of its jurisdiction with --layers, or check its CRS (--crs)\n"
    )
