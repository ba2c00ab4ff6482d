"""Generate the bundled sample data set from the real boundary of 南昌县 (Nanchang County).

The territory is real: the county boundary published by Amap (GCJ-02),
converted here to CGCS2000. Everything inside it is synthetic but shaped like
the real thing: red-line patches (a river corridor, lakes, forest), control
units that tile the county (priority, key with two industrial parks, general),
quality zones (air non-attainment, water control zones), resource-cap zones
(groundwater over-extraction, high-pollution-fuel ban) and sample projects,
each placed so that it takes one verdict path of the sample rules.

The output is deterministic: the same input gives the same features.

Usage::

    python scripts/make_sample.py                 # regenerate data/sample/
    python scripts/make_sample.py --out /tmp/s    # somewhere else
    python scripts/make_sample.py --admin jiangxi_admin_gcj02.gpkg   # re-extract the boundary first
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely import affinity

from threelines.input.crs import gcj02_to_wgs84

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "data" / "sample" / "source" / "nanchang_county_gcj02.geojson"
ADCODE = "360121"
SEED = 360121
# Construction happens in CGCS2000 3-degree Gauss-Kruger zone 39 (central meridian 117E, no zone prefix).
BUILD_CRS = "EPSG:4548"
# Where each layer is stored: deliberately in different CRSs and formats, as real data arrives.
UNITS_CRS = "EPSG:4527"  # the same zone with the zone number prefixed to the easting (39xxxxxx)
GEO_CRS = "EPSG:4490"  # CGCS2000 longitude/latitude


def county_boundary(source: Path) -> shapely.Geometry:
    """Read the GCJ-02 county boundary and return it in CGCS2000 lon/lat."""
    frame = pyogrio.read_dataframe(source)
    geom = frame.geometry.iloc[0]
    return shapely.transform(geom, gcj02_to_wgs84)


def blob(rng: np.random.Generator, centre: tuple[float, float], radius: float, wobble: float = 0.25) -> shapely.Polygon:
    """An irregular round polygon: a circle with smooth radial noise."""
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    phases = rng.uniform(0, 2 * np.pi, 3)
    r = radius * (1 + wobble * sum(np.sin(k * angles + ph) / k for k, ph in zip((2, 3, 5), phases, strict=True)) / 1.8)
    return shapely.Polygon(np.column_stack([centre[0] + r * np.cos(angles), centre[1] + r * np.sin(angles)]))


def rectangle(centre, width: float, height: float, angle: float) -> shapely.Polygon:
    """A rotated rectangle, the typical shape of a plant site."""
    box = shapely.box(-width / 2, -height / 2, width / 2, height / 2)
    return affinity.translate(affinity.rotate(box, angle, origin=(0, 0)), *centre)


def river_line(county: shapely.Geometry) -> shapely.LineString:
    """A sinuous river centreline crossing the county from south-east to north-west."""
    minx, miny, maxx, maxy = county.bounds
    t = np.linspace(0, 1, 200)
    x = minx + (maxx - minx) * (0.75 - 0.45 * t) + 2500 * np.sin(6 * np.pi * t)
    y = miny - 2000 + (maxy - miny + 4000) * t
    return shapely.LineString(np.column_stack([x, y]))


def make_redlines(rng, county, places) -> gpd.GeoDataFrame:
    """Red-line patches: a river corridor, lakes and forest patches.

    They keep out of the town, the parks and the water-source area, as
    real red lines keep out of built-up land.
    """
    pieces = []
    built = [places[k] for k in ("town", "park_xiaolan", "park_xiangtang", "water_source")]
    river = shapely.difference(shapely.intersection(river_line(county).buffer(180), county), shapely.union_all(built))
    for i, part in enumerate(sorted(shapely.get_parts(river), key=lambda g: -g.area)[:3]):
        pieces.append(("河流", f"抚河南昌县段河流生态保护红线{i + 1}", part))
    inner = county.buffer(-2500)
    minx, miny, maxx, maxy = inner.bounds
    taken = shapely.union_all([p[2] for p in pieces] + built).buffer(800)
    lakes = [
        "青岚湖湿地生态保护红线",
        "象湖湿地生态保护红线",
        "艾溪湖湿地生态保护红线",
        "瑶湖湿地生态保护红线",
        "白湖湿地生态保护红线",
    ]
    rivers, forests = len(pieces), 0
    while len(pieces) < 32:
        centre = (rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if not inner.contains(shapely.Point(centre)):
            continue
        is_lake = len(pieces) < rivers + len(lakes)
        shape = blob(rng, centre, rng.uniform(900, 1600) if is_lake else rng.uniform(250, 700))
        if shape.intersects(taken):
            continue
        taken = taken.union(shape.buffer(1500))
        if is_lake:
            pieces.append(("湖泊", lakes[len(pieces) - rivers], shape))
        else:
            forests += 1
            pieces.append(("林地", f"南昌县水源涵养林生态保护红线{forests:02d}", shape))
    frame = gpd.GeoDataFrame(
        {
            "id": [f"HX{ADCODE}{i + 1:03d}" for i in range(len(pieces))],
            "name": [p[1] for p in pieces],
            "type": [p[0] for p in pieces],
        },
        geometry=[p[2] for p in pieces],
        crs=BUILD_CRS,
    )
    frame["area_ha"] = (frame.area / 1e4).round(2)
    return frame


def make_units(rng, county, redlines, places) -> gpd.GeoDataFrame:
    """Control units tiling the county: priority (water source, red-line surroundings), key (town, parks), general."""
    special = [
        ("priority", "南昌县集中式饮用水水源保护优先保护单元", places["water_source"], False),
        ("key", "南昌县莲塘城镇重点管控单元", places["town"], False),
        ("key", "南昌小蓝经济技术开发区重点管控单元", places["park_xiaolan"], True),
        ("key", "南昌县向塘工业园重点管控单元", places["park_xiangtang"], True),
    ]
    key_union = shapely.union_all([shape for _, _, shape, _ in special])
    priority_space = shapely.difference(
        shapely.intersection(redlines.geometry.buffer(300).union_all(), county), key_union
    )
    seeds = []
    minx, miny, maxx, maxy = county.bounds
    while len(seeds) < 24:
        point = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if county.contains(point):
            seeds.append(point)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=county.envelope.buffer(5000))
    )
    rest = shapely.difference(county, key_union)
    units = []
    for cell in cells:
        general = shapely.difference(shapely.intersection(cell, rest), priority_space)
        priority = shapely.intersection(shapely.intersection(cell, rest), priority_space)
        if priority.area > 1e4:
            units.append(("priority", None, priority, False))
        if general.area > 1e4:
            units.append(("general", None, general, False))
    units = special + units
    # Slivers under 1 ha are merged away above; re-tile exactly by giving the remainder to the largest unit.
    geoms = [shapely.make_valid(u[2]) for u in units]
    gap = shapely.difference(county, shapely.union_all(geoms))
    if gap.area > 0:
        biggest = int(np.argmax([g.area for g in geoms]))
        geoms[biggest] = shapely.union(geoms[biggest], gap)
    digit = {"priority": 1, "key": 2, "general": 3}
    label = {"priority": "优先保护单元", "key": "重点管控单元", "general": "一般管控单元"}
    serial = dict.fromkeys(digit, 0)
    rows = []
    for (cls, name, _, is_park), geom in zip(units, geoms, strict=True):
        serial[cls] += 1
        rows.append(
            {
                "code": f"ZH{ADCODE}{digit[cls]}{serial[cls]:04d}",
                "name": name or f"南昌县{label[cls]}{serial[cls]:02d}",
                "class": label[cls],
                "is_park": is_park,
                "geometry": shapely.MultiPolygon(
                    [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 1.0]
                ),
            }
        )
    return gpd.GeoDataFrame(rows, crs=BUILD_CRS)


def make_quality(county, places) -> gpd.GeoDataFrame:
    """Quality-baseline zones: one air non-attainment zone, three water control zones."""
    minx, miny, maxx, maxy = county.bounds
    rows = [
        {
            "zone_id": f"AQ{ADCODE}01",
            "name": "南昌县北部大气环境质量不达标区",
            "zone_type": "air",
            "attainment": False,
            "pollutants": "PM2.5,O3",
            "offset_ratio": 2.0,
            # Remaining capacity (t/a) left by the zone's emission budget.
            "remaining_so2": 80.0,
            "remaining_nox": 120.0,
            "remaining_vocs": 60.0,
            "remaining_pm": 40.0,
            "geometry": shapely.intersection(county, shapely.box(minx, places["air_south_edge"], maxx, maxy)),
        }
    ]
    bands = np.linspace(minx, maxx, 4)
    waters = [  # name, target class, current class, meets target, remaining COD and NH3-N (t/a)
        ("赣江南昌县控制单元", "III", "III", True, 800.0, 60.0),
        ("抚河南昌县控制单元", "III", "IV", False, 300.0, 25.0),
        ("青岚湖南昌县控制单元", "III", "III", True, 500.0, 40.0),
    ]
    for i, (name, target, current, meets, cod, nh3n) in enumerate(waters):
        rows.append(
            {
                "zone_id": f"WQ{ADCODE}{i + 1:02d}",
                "name": name,
                "zone_type": "water",
                "target_class": target,
                "current_class": current,
                "meets_target": meets,
                "offset_ratio": 2.0,
                "remaining_cod": cod,
                "remaining_nh3n": nh3n,
                "geometry": shapely.intersection(county, shapely.box(bands[i], miny, bands[i + 1], maxy)),
            }
        )
    frame = gpd.GeoDataFrame(rows, crs=BUILD_CRS)
    for column in ("attainment", "meets_target"):  # booleans with nulls, written as JSON true/false/null
        frame[column] = frame[column].astype("boolean")
    return frame


def make_caps(county, places) -> gpd.GeoDataFrame:
    """Resource-cap zones: a groundwater over-extraction zone and a fuel-ban zone."""
    rows = [
        {"zone_id": f"DX{ADCODE}01", "name": "南昌县东南部浅层地下水超采区", "cap_type": "groundwater",
         "geometry": shapely.intersection(county, places["overdraft"])},
        {"zone_id": f"JR{ADCODE}01", "name": "南昌县莲塘镇高污染燃料禁燃区", "cap_type": "fuel_ban",
         "banned": "coal,heavy_oil", "geometry": shapely.intersection(county, places["fuel_ban"])},
        # The county's water-use cap: what is left of its annual total (m3/a). A shapefile field
        # name has at most 10 characters, hence rem_water for remaining_water.
        {"zone_id": f"YS{ADCODE}01", "name": "南昌县用水总量控制区", "cap_type": "water_total",
         "rem_water": 150000.0, "geometry": county},
    ]  # fmt: skip
    return gpd.GeoDataFrame(rows, crs=BUILD_CRS)


def make_pm25(county_ll) -> tuple[np.ndarray, object, tuple[float, float, float, float]]:
    """A 0.01-degree grid of annual mean PM2.5 (ug/m3) over the county, higher towards Nanchang city.

    Smooth and deterministic: 26 ug/m3 in the south rising to about 42 in the
    north, with gentle waves; cells outside the county are nodata.
    """
    from rasterio.features import geometry_mask
    from rasterio.transform import from_origin

    minx, miny, maxx, maxy = (
        np.floor(v * 100) / 100 if i < 2 else np.ceil(v * 100) / 100 for i, v in enumerate(county_ll.bounds)
    )
    width, height = round((maxx - minx) / 0.01), round((maxy - miny) / 0.01)
    transform = from_origin(minx, maxy, 0.01, 0.01)
    rows, cols = np.mgrid[0:height, 0:width]
    lon = minx + (cols + 0.5) * 0.01
    lat = maxy - (rows + 0.5) * 0.01
    north = (lat - miny) / (maxy - miny)
    values = 26.0 + 16.0 * north + 1.5 * np.sin(lon * 40.0) * np.cos(lat * 30.0)
    outside = geometry_mask([county_ll], out_shape=values.shape, transform=transform)
    values[outside] = -9999.0
    return values.astype("float32"), transform, (minx, miny, maxx, maxy)


def make_places(rng, county) -> dict[str, object]:
    """Where the town, the parks and the special zones lie (EPSG:4548 metres).

    The positions follow the county's layout loosely: the seat (莲塘) and the
    Xiangtang industrial park in the south-western lobe, the Xiaolan
    development zone in the north-eastern one, next to Nanchang city and
    inside the air non-attainment zone.
    """
    town_c = (395000.0, 3158000.0)
    return {
        "town": blob(rng, town_c, 2600, 0.15),
        "fuel_ban": blob(rng, town_c, 4200, 0.1),
        "park_xiaolan": rectangle((421000.0, 3186000.0), 4600, 3000, -8),
        "park_xiangtang": rectangle((393000.0, 3149000.0), 4200, 2800, 12),
        "water_source": blob(rng, (388500.0, 3152000.0), 1800, 0.2),
        "overdraft": blob(rng, (421000.0, 3170000.0), 4500, 0.2),
        "air_south_edge": 3180000.0,
    }


# Each sample project: id, name, industry, kind, size, what must hold where it goes, and attributes.
PROJECTS = [
    ("P01", "南昌县现代物流园通用仓储项目", "G5920", "area", (400, 300), "pass", {}),
    ("P02", "湿地生态旅游度假村项目", "N7869", "area", (450, 350), "redline_overlap", {}),
    ("P03", "南昌县S101省道改扩建工程", "E4812", "linear", 30.0, "road_cross", {}),
    ("P04", "金属结构件加工厂项目", "C3311", "area", (250, 200), "redline_near", {}),
    ("P05", "年产5万吨有机化学原料项目", "C2614", "area", (450, 320), "chem_outside", {"emit_vocs": 12.0}),
    ("P06", "小蓝园区精细化工中间体项目", "C2614", "area", (300, 250), "chem_inside", {"emit_vocs": 6.5}),
    ("P07", "年产10万吨机制纸项目", "C2221", "area", (500, 400), "priority_heavy", {"emit_cod": 20.0}),
    ("P08", "电子元器件及线路板生产项目", "C3982", "area", (350, 250), "air", {"emit_vocs": 8.5, "emit_nox": 2.0}),
    ("P09", "食品加工厂燃煤锅炉项目", "C1431", "area", (200, 150), "fuel_ban", {"fuel": "coal", "emit_nox": 3.2, "emit_so2": 4.1}),
    ("P10", "饮料生产基地项目", "C1524", "area", (300, 300), "groundwater", {"water_source": "groundwater", "water_m3": 180000.0}),
    ("P11", "棉印染精加工项目", "C1713", "area", (300, 220), "water", {"emit_cod": 12.0, "emit_nh3n": 1.2}),
    ("P12", "移动通信基站", "I6312", "point", None, "pass", {}),
    ("P13", "燃煤热电联产项目", "D4412", "area", (400, 350), "air", {"fuel": "coal", "emit_nox": 150.0, "emit_so2": 90.0, "emit_pm": 12.0}),
]  # fmt: skip


def place_projects(rng, county, layers) -> gpd.GeoDataFrame:
    """Put each sample project where its verdict path holds, with margins of safety."""
    red, units, quality, caps = (layers[k] for k in ("redline", "units", "quality", "caps"))
    red_all = red.union_all()
    park = units[units.is_park].union_all()
    xiaolan = units[units.name.str.contains("小蓝")].union_all()
    priority = units[units["class"] == "优先保护单元"].union_all()
    general = units[units["class"] == "一般管控单元"].union_all()
    air = quality[quality.zone_type == "air"].union_all()
    water_bad = quality[(quality.zone_type == "water") & quality.meets_target.eq(False).fillna(False)].union_all()
    fuel = caps[caps.cap_type == "fuel_ban"].union_all()
    ground = caps[caps.cap_type == "groundwater"].union_all()
    rivers = red[red["type"] == "河流"]
    forests = red[red["type"] == "林地"]
    minx, miny, maxx, maxy = county.bounds
    xs, ys = np.meshgrid(np.arange(minx, maxx, 300.0), np.arange(miny, maxy, 300.0))
    centres = np.column_stack([xs.ravel(), ys.ravel()])
    rng.shuffle(centres)

    def far(geom, zone, margin=300.0):
        return zone is None or zone.is_empty or shapely.distance(geom, zone) > margin

    def deep(geom, zone, margin=150.0):
        return shapely.contains(zone, geom.buffer(margin))

    def quiet(geom, *, allow=()):
        """Outside every zone except those in ``allow``, with a margin."""
        zones = {"air": air, "water": water_bad, "fuel": fuel, "ground": ground, "priority": priority}
        return all(far(geom, z, 200.0) for k, z in zones.items() if k not in allow)

    checks = {
        "pass": lambda g: deep(g, general) and far(g, red_all, 1500) and quiet(g),
        "redline_near": lambda g: deep(g, general, 20) and 150 < shapely.distance(g, red_all) < 400 and quiet(g, allow=("priority",)),
        "chem_outside": lambda g: deep(g, general) and far(g, red_all, 1500) and far(g, park, 1000) and quiet(g),
        "chem_inside": lambda g: deep(g, xiaolan, 300) and far(g, red_all, 1000) and deep(g, air) and quiet(g, allow=("air",)),
        "priority_heavy": lambda g: deep(g, priority, 100) and far(g, red_all, 800) and quiet(g, allow=("priority",)),
        "air": lambda g: deep(g, general) and deep(g, air, 300) and far(g, red_all, 1000) and quiet(g, allow=("air",)),
        "fuel_ban": lambda g: deep(g, fuel, 200) and far(g, red_all, 1000) and quiet(g, allow=("fuel",)),
        "groundwater": lambda g: deep(g, general) and deep(g, ground, 300) and far(g, red_all, 1000) and quiet(g, allow=("ground",)),
        "water": lambda g: deep(g, general) and deep(g, water_bad, 300) and far(g, red_all, 1000) and quiet(g, allow=("water",)),
    }  # fmt: skip
    rows, used = [], shapely.Point()
    for pid, name, code, kind, size, path, extra in PROJECTS:
        geom = None
        if path == "redline_overlap":
            # Straddle a forest patch's edge: part inside the red line, part outside.
            patch = forests.geometry.iloc[2]
            edge = shapely.get_exterior_ring(patch).interpolate(0.25, normalized=True)
            geom = rectangle((edge.x, edge.y), *size, 20)
        elif path == "road_cross":
            river = rivers.geometry.iloc[0]
            for c in centres:
                line = affinity.rotate(
                    shapely.LineString([(c[0] - 3000, c[1]), (c[0] + 3000, c[1])]), 15, origin=tuple(c)
                )
                others = red[~red.geometry.intersects(line)].union_all()
                if (line.intersects(river) and county.contains(line) and far(line, others, 800)
                        and far(line, park, 500) and quiet(line, allow=("priority", "water", "air"))):  # fmt: skip
                    geom = line
                    break
        elif kind == "point":
            for c in centres:
                point = shapely.Point(c)
                if checks[path](point.buffer(50)) and far(point, used, 2000):
                    geom = point
                    break
        else:
            for c in centres:
                candidate = rectangle(tuple(c), *size, float(rng.uniform(-30, 30)))
                if checks[path](candidate) and far(candidate, used, 2000):
                    geom = candidate
                    break
        if geom is None:
            raise SystemExit(f"no place found for sample project {pid} ({path})")
        used = used.union(geom)
        row = {"id": pid, "name": name, "industry": code, "kind": kind, "width": size if kind == "linear" else None}
        row.update({"fuel": None, "water_source": None, "emit_so2": 0.0, "emit_nox": 0.0, "emit_vocs": 0.0,
                    "emit_pm": 0.0, "emit_cod": 0.0, "emit_nh3n": 0.0, "water_m3": 0.0})  # fmt: skip
        row.update(extra)
        row["geometry"] = geom
        rows.append(row)
    return gpd.GeoDataFrame(rows, crs=BUILD_CRS)


def _round(frame: gpd.GeoDataFrame, crs: str, decimals: int) -> gpd.GeoDataFrame:
    """Reproject and round coordinates so the files are compact and stable."""
    out = frame.to_crs(crs)
    out["geometry"] = shapely.set_precision(out.geometry.values, 10.0**-decimals)
    return out


def write(out: Path, county_ll, layers, projects) -> None:
    """Write every sample file into ``out``."""
    if out.exists():
        for name in ("layers", "projects", "site"):
            shutil.rmtree(out / name, ignore_errors=True)
    (out / "layers").mkdir(parents=True, exist_ok=True)
    (out / "projects").mkdir(parents=True, exist_ok=True)
    (out / "site").mkdir(parents=True, exist_ok=True)
    county = gpd.GeoDataFrame({"adcode": [ADCODE], "name": ["南昌县"]}, geometry=[county_ll], crs=GEO_CRS)
    pyogrio.write_dataframe(_round(county, GEO_CRS, 7), out / "layers" / "county.gpkg", layer="county")
    pyogrio.write_dataframe(_round(layers["redline"], GEO_CRS, 7), out / "layers" / "redline.gpkg", layer="redline")
    pyogrio.write_dataframe(_round(layers["units"], UNITS_CRS, 2), out / "layers" / "units.gpkg", layer="units")
    pyogrio.write_dataframe(
        _round(layers["quality"], GEO_CRS, 7), out / "layers" / "quality.geojson", driver="GeoJSON", WRITE_NAME="NO"
    )
    # The cap zones come as a GBK shapefile without a .cpg, as Chinese agencies often deliver them.
    caps = _round(layers["caps"], GEO_CRS, 7)
    pyogrio.write_dataframe(caps, out / "layers" / "caps.shp", encoding="GBK")
    (out / "layers" / "caps.cpg").unlink(missing_ok=True)
    import rasterio

    values, transform, _ = make_pm25(county_ll)
    profile = {"driver": "GTiff", "height": values.shape[0], "width": values.shape[1], "count": 1, "dtype": "float32",
               "crs": GEO_CRS, "transform": transform, "nodata": -9999.0, "compress": "deflate"}  # fmt: skip
    with rasterio.open(out / "layers" / "pm25.tif", "w", **profile) as dst:
        dst.write(values, 1)
    projects_ll = _round(projects, GEO_CRS, 7)
    pyogrio.write_dataframe(projects_ll, out / "projects.gpkg", layer="projects")
    for _, row in projects_ll.iterrows():
        one = gpd.GeoDataFrame([row], crs=GEO_CRS)
        pyogrio.write_dataframe(one, out / "projects" / f"{row['id']}.geojson", driver="GeoJSON", WRITE_NAME="NO")
    # One site as a consultant receives it: a shapefile in Gauss-Kruger coordinates.
    site = _round(projects[projects.id == "P05"][["id", "name", "industry", "emit_vocs", "geometry"]], UNITS_CRS, 3)
    pyogrio.write_dataframe(site, out / "site" / "site.shp", encoding="UTF-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "sample")
    parser.add_argument("--admin", type=Path, help="Jiangxi admin GeoPackage (GCJ-02) to re-extract the county from")
    args = parser.parse_args()
    if args.admin:
        frame = pyogrio.read_dataframe(args.admin, layer="county", where=f"adcode = '{ADCODE}'")
        pyogrio.write_dataframe(frame, SOURCE, driver="GeoJSON", COORDINATE_PRECISION=6)
    rng = np.random.default_rng(SEED)
    county_ll = county_boundary(SOURCE)
    county = gpd.GeoSeries([county_ll], crs=GEO_CRS).to_crs(BUILD_CRS).iloc[0]
    places = make_places(rng, county)
    redlines = make_redlines(rng, county, places)
    layers = {
        "redline": redlines,
        "units": make_units(rng, county, redlines, places),
        "quality": make_quality(county, places),
        "caps": make_caps(county, places),
    }
    projects = place_projects(rng, county, layers)
    write(args.out, county_ll, layers, projects)
    from sample_package import write_package  # the same sample as a published-style package

    write_package(args.out, args.out / "package", ROOT / "data" / "sample" / "access_list.csv")
    pd.set_option("display.width", 160)
    print(f"wrote {args.out}: {len(redlines)} red-line patches, {len(layers['units'])} units, "
          f"{len(layers['quality'])} quality zones, {len(layers['caps'])} cap zones, {len(projects)} projects")  # fmt: skip


if __name__ == "__main__":
    main()
