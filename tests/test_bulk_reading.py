"""The batch's bulk reading gives what the one-by-one reading gives: attribute checks, chunk order, chunk transfer."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import shapely
from geopandas import GeoSeries

from threelines.batch.workers import hilbert_distance, spatial_order
from threelines.errors import FootprintError, IndustryCodeError
from threelines.input.attributes import ATTRIBUTES, check_attributes, check_columns
from threelines.input.projects import Projects

#: Cells of every sort a footprint file may hold: fine, refused, not plainly one value.
CELLS = {
    "name": [None, "物流园", "[not a list", "[1, 2]", 7, 2.5, True],
    "industry": [None, "C2511", "2511", "c26", 2511, 26, 211, 2511.0, 2511.5, "Z9999", float("inf"), True, "[1]"],
    "kind": [None, "area", " Linear ", "AREA", "road", 1, "{}"],
    "fuel": [None, "coal", "煤", "Gas ", "wood", 0, "[]"],
    "water_source": [None, "地下水", "municipal", "sea", False],
    "width": [None, 0, 30, 30.5, -1, -0.0, 1e9, float("inf"), float("nan"), "30", "abc", True, "[30]"],
    "emit_so2": [None, 0.0, 1.5, 2, -3.5, 1e12, float("-inf"), "1.5"],
}

#: Cells that send a whole column to the one-by-one checks: a list, an integer beyond any float.
ODD = {"emit_so2": [1.5], "width": 10**400}


def rows(count: int = 400, seed: int = 7) -> list[dict]:
    """Rows drawn from :data:`CELLS`, each attribute independently; half the cells are one of the first three."""
    rng = np.random.default_rng(seed)
    table = []
    for i in range(count):
        row = {"id": f"P{i}"}
        for name, values in CELLS.items():
            row[name] = values[rng.integers(3 if rng.random() < 0.5 else len(values))]
        table.append(row)
    return table


def one_by_one(row: dict) -> dict | str:
    values = dict.fromkeys(ATTRIBUTES) | row
    try:
        return check_attributes(values, "f.gpkg")
    except (FootprintError, IndustryCodeError) as exc:
        return str(exc)


def test_column_checks_agree_with_the_checks_of_each_project():
    table = rows()
    cells = {name: [row[name] for row in table] for name in CELLS}
    checked = check_columns([row["id"] for row in table], cells, {})
    for row, bulk in zip(table, checked, strict=True):
        alone = one_by_one(row)
        if isinstance(alone, str):
            assert bulk is None, alone  # a refused row is left to check_attributes, which gives its message
        elif bulk is not None:
            assert bulk == alone
            assert list(bulk) == list(alone)
            assert [type(v) for v in bulk.values()] == [type(v) for v in alone.values()]
    assert sum(b is not None for b in checked) > 20  # most plain rows pass in bulk


@pytest.mark.parametrize("name", list(ODD))
def test_a_cell_numpy_cannot_take_leaves_its_rows_to_the_checks_of_each_project(name):
    table = rows(60)
    table[5][name] = ODD[name]
    cells = {column: [row[column] for row in table] for column in CELLS}
    checked = check_columns([row["id"] for row in table], cells, {})
    assert checked[5] is None
    for row, bulk in zip(table, checked, strict=True):
        alone = one_by_one(row)
        assert bulk is None if isinstance(alone, str) else bulk in (None, alone)


@pytest.mark.parametrize(
    "column",
    [
        np.array([0, 3, 12, -1, 10**6]),
        np.array([0.5, np.nan, -2.0, np.inf, 1e30, 7.0]),
        np.array([1, 2], dtype=np.int32),
    ],
    ids=["integers", "reals with gaps", "int32"],
)
def test_number_arrays_read_as_their_plain_cells(column):
    ids = [f"P{i}" for i in range(len(column))]
    plain = [None if v != v else v for v in column.tolist()]
    for name in ("width", "emit_cod", "id", "industry"):
        assert check_columns(ids, {name: column}, {}) == check_columns(ids, {name: plain}, {})


def test_overrides_replace_every_cell():
    table = rows(50)
    cells = {name: [row[name] for row in table] for name in CELLS}
    overrides = {"industry": "C2511", "width": 12.0}
    checked = check_columns([row["id"] for row in table], cells, overrides)
    for row, bulk in zip(table, checked, strict=True):
        alone = one_by_one(row | overrides)
        assert bulk is None if isinstance(alone, str) else bulk in (None, alone)


def test_hilbert_distance_is_geopandas_hilbert_distance():
    rng = np.random.default_rng(3)
    for scale, offset in itertools.product((1e-3, 1.0, 1e5), (0.0, 4e7)):
        xy = rng.normal(size=(2000, 2)) * scale + offset
        expected = GeoSeries(shapely.points(xy)).hilbert_distance().to_numpy()
        assert np.array_equal(hilbert_distance(xy[:, 0], xy[:, 1]), expected)
    line = np.column_stack([np.full(50, 3.0), np.arange(50.0)])  # no width: every x on the grid's edge
    expected = GeoSeries(shapely.points(line)).hilbert_distance().to_numpy()
    assert np.array_equal(hilbert_distance(line[:, 0], line[:, 1]), expected)


def test_spatial_order_follows_the_curve():
    squares = [shapely.box(x, y, x + 1, y + 1) for x, y in np.random.default_rng(5).uniform(0, 100, size=(300, 2))]
    projects = Projects("f", [{}] * 300, np.array(squares, dtype=object), np.ones(300))
    positions = list(range(0, 300, 2))
    keys = GeoSeries(shapely.centroid(projects.geometry[positions])).hilbert_distance().to_numpy()
    assert spatial_order(projects, positions) == [positions[i] for i in np.argsort(keys, kind="stable")]


def test_projects_travel_to_workers_unchanged():
    geometry = np.array(
        [shapely.box(0, 0, 1, 1), shapely.Point(1, 2), None, shapely.from_wkt("POLYGON EMPTY"), shapely.Point(1, 2, 3)],
        dtype=object,
    )
    projects = Projects(
        "f", [{"id": str(i)} for i in range(5)], geometry, np.arange(5.0), keys=[("f", None, i) for i in range(5)]
    )
    back = pickle.loads(pickle.dumps(projects))
    assert back.attrs == projects.attrs
    assert back.keys == projects.keys
    assert back.area_m2.tolist() == projects.area_m2.tolist()
    assert shapely.to_wkb(back.geometry).tolist() == shapely.to_wkb(geometry).tolist()
    assert back.take([4, 0]).attrs == [{"id": "4"}, {"id": "0"}]
