"""Write the sample jurisdiction as a published-style data package (data/sample/package/).

The package is what a province sends: GBK shapefiles without ``.cpg`` under
the official field names (HJZHGKDYBM, ZHGKDYFL, DQHJGKFQBM, ...), the red
lines as their own layer, and an XLSX list with one row per unit and rows for
the province, the city and the county, the four dimensions as numbered prose
cells. It is made from the hand-written sample (layers and access_list.csv),
so that ``threelines init`` of it can be checked against the sample: the 13
sample projects get the same verdicts.

Run by ``scripts/make_sample.py`` after the sample, or alone:
``python scripts/sample_package.py [--sample data/sample]``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

ROOT = Path(__file__).resolve().parents[1]

#: Numbering styles used in turn, as provincial lists mix them.
STYLES = ("{n}.", "{n}、", "（{n}）", "{c}")
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"
DIMENSIONS = ("空间布局约束", "污染物排放管控", "环境风险防控", "资源开发效率要求")
CLASS_CODE = {"优先保护单元": "1", "重点管控单元": "2", "一般管控单元": "3"}

#: Province- and city-level clauses (real-style; none decides a sample project's verdict).
UPPER = {
    ("province", "江西省", "360000"): {
        "空间布局约束": ["禁止在长江干流和主要支流岸线1公里范围内新建、扩建化工园区和化工项目",
                   "严格控制钢铁、水泥、平板玻璃等行业新增产能，新建项目须实施产能等量或减量置换"],
        "环境风险防控": ["涉重金属重点行业企业须落实重金属污染物排放总量控制要求"],
    },
    ("city", "南昌市", "360100"): {
        "空间布局约束": ["禁止新建、扩建制浆造纸项目"],
        "污染物排放管控": ["新建涉挥发性有机物排放的工业项目应入园区，实行区域内削减替代"],
    },
}  # fmt: skip

#: The air zone's own prose (受体敏感区): it applies in the units the zone covers.
AIR_PROSE = "1.禁止新建、扩建燃煤发电、燃煤热电联产项目。2.严格控制新增大气污染物排放"


def prose(texts: list[str], style: int) -> str:
    """Number clauses in one of the published styles."""
    out = []
    for n, text in enumerate(texts, start=1):
        mark = STYLES[style % len(STYLES)].format(n=n, c=CIRCLED[(n - 1) % len(CIRCLED)])
        out.append(f"{mark}{text}")
    return ("；" if style % 2 else "。").join(out) + "。"


def write_package(sample: Path, out: Path, access_list: Path | None = None) -> None:
    """Write ``out`` (replacing it) from the sample's layers at ``sample`` and its hand-written access list."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    layers = sample / "layers"
    units = pyogrio.read_dataframe(layers / "units.gpkg")
    clauses = pd.read_csv(access_list or sample / "access_list.csv", dtype=str, keep_default_na=False)

    shp = gpd.GeoDataFrame(
        {"HJZHGKDYBM": units.code, "HJZHGKDYMC": units.name, "PROV": "江西省", "CITY": "南昌市", "AREA": "南昌县",
         "ZHGKDYFL": units["class"].map(CLASS_CODE), "REMARK": ""},
        geometry=units.geometry, crs=units.crs,
    )  # fmt: skip
    _shapefile(shp, out / "环境管控单元.shp")

    red = pyogrio.read_dataframe(layers / "redline.gpkg")
    _shapefile(gpd.GeoDataFrame({"BH": red.id, "MC": red.name, "LX": red.type}, geometry=red.geometry, crs=red.crs),
               out / "生态保护红线.shp")  # fmt: skip

    quality = pyogrio.read_dataframe(layers / "quality.geojson")
    caps = pyogrio.read_dataframe(layers / "caps.shp", encoding="GBK")
    air = quality[quality.zone_type == "air"]
    fuel = caps[caps.cap_type == "fuel_ban"]
    _shapefile(
        gpd.GeoDataFrame(
            {"DQHJGKFQBM": [*air.zone_id, *fuel.zone_id], "DQHJGKFQMC": [*air.name, *fuel.name],
             "ZHGKDYFL": "2", "HJYS": "大气",
             "YSXL": ["大气环境受体敏感重点管控区"] * len(air) + ["高污染燃料禁燃区"] * len(fuel),
             "KJBJYS": [AIR_PROSE] * len(air) + [""] * len(fuel)},
            geometry=[*air.geometry, *fuel.geometry], crs=quality.crs,
        ),
        out / "大气环境管控分区.shp",
    )  # fmt: skip
    water = quality[quality.zone_type == "water"]
    ground = caps[caps.cap_type == "groundwater"]
    met = water.meets_target.fillna(1).astype(float) > 0
    _shapefile(
        gpd.GeoDataFrame(
            {"SHJGKFQBM": [*water.zone_id, *ground.zone_id], "SHJGKFQMC": [*water.name, *ground.name],
             "ZHGKDYFL": [*met.map({True: "3", False: "2"}), *["2"] * len(ground)], "HJYS": "水",
             "YSXL": [*met.map({True: "水环境一般管控区", False: "水环境工业污染重点管控区"}),
                      *["地下水超采区"] * len(ground)],
             "LYMC": [*["赣江" if "赣江" in n else "抚河" for n in water.name], *["—"] * len(ground)],
             "HDMC": [*water.name.str.replace("控制单元", "段"), *[""] * len(ground)]},
            geometry=[*water.geometry, *ground.geometry], crs=quality.crs,
        ),
        out / "水环境管控分区.shp",
    )  # fmt: skip

    rows = []
    for (level, name, adcode), dims in UPPER.items():
        rows.append({"环境管控单元编码": adcode, "单元名称": name, "层级": level,
                     **{d: prose(dims.get(d, []), i) if dims.get(d) else "" for i, d in enumerate(DIMENSIONS)}})  # fmt: skip
    whole = clauses[clauses["适用范围"] == "全域"]
    rows.append({"环境管控单元编码": "360121", "单元名称": "南昌县", "层级": "county",
                 **{d: prose(list(whole[whole["管控维度"] == d]["管控要求"]), i) for i, d in enumerate(DIMENSIONS)}})  # fmt: skip
    for k, unit in units.reset_index(drop=True).iterrows():
        mine = clauses[(clauses["适用范围"] == unit.code) | (clauses["适用范围"] == unit["class"])]
        rows.append({"环境管控单元编码": unit.code, "单元名称": unit["name"], "层级": "unit",
                     **{d: prose(list(mine[mine["管控维度"] == d]["管控要求"]), k + i)
                        if (mine["管控维度"] == d).any() else "" for i, d in enumerate(DIMENSIONS)}})  # fmt: skip
    pd.DataFrame(rows).to_excel(out / "生态环境准入清单.xlsx", index=False)


def _shapefile(frame: gpd.GeoDataFrame, path: Path) -> None:
    """A GBK shapefile without .cpg, as agencies deliver them."""
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=ROOT / "data" / "sample")
    args = parser.parse_args()
    write_package(args.sample, args.sample / "package")
    print(f"wrote {args.sample / 'package'}")


if __name__ == "__main__":
    main()
