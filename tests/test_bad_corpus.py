"""The corpus of broken inputs under tests/data/bad: each gives one clear line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BAD = Path(__file__).parent / "data" / "bad"

EXPECTED = {
    "truncated.shp": "truncated.shp (the shapefile's geometry) is truncated: 54 bytes, shorter than a shapefile header",
    "missing_shx.shp": "the shapefile's index missing_shx.shx is missing; copy every file of the shapefile",
    "garbage.gpkg": "cannot read it as a vector file (",
    "broken.kml": "cannot read it as a vector file (ERROR parsing kml",
    "empty.geojson": "has no features; a footprint file needs at least one polygon, line or point",
    "nonnumeric.csv": "Y 'abc' is not a number (nor degrees-minutes-seconds)",
    "twopoints.csv": "parcel '1' ring '1' has 2 point(s); a polygon needs at least 3",
    "nocolumns.csv": "no coordinate columns; give X and Y (survey northing and easting) or 经度 and 纬度",
    "norows.csv": "the table has no rows; a corner table needs one row per corner point",
    "notazip.zip": "is not a readable zip archive",
    "cut_record.shp": "cut_record.shp (the shapefile's geometry) is truncated: 332 of the 372 bytes its header declares",
    "random_dbf.shp": "cannot read the attribute table random_dbf.dbf (it is not a dBase table",
    "list_attribute.geojson": "project 'L1': industry ['C3311'] is not a code; give one code as text",
    "flat_polygon.geojson": "project 'F1': is a polygon with no area (its vertices lie on one line)",
    "nan_coordinate.geojson": "project 'N1', feature 0 (0-based): has a NaN or infinite coordinate",
    "huge_vertex.geojson": "project 'H1', feature 0 (0-based): has a coordinate of 1e+308, too large for a place on Earth",
    "huge_radius.geojson": "project 'R1': radius 1e+12 m is beyond the plausible limit of 50000 m",
    "gk_outlier.geojson": "project 'G4', feature 3 (0-based): in CGCS2000 / 3-degree Gauss-Kruger zone 39 coordinates such as "
    "0.0, 0.0 cannot be placed on Earth",
    "zip_slip.zip": "member '../evil.geojson' would be unpacked outside the archive's folder; the archive is refused",
    "zip_bomb.zip": "member 'site.geojson' unpacks 1,028 times larger than it is packed, beyond the limit of 200:1",
    "not_geojson.geojson": "cannot read it as a vector file (its content is not in any vector format GDAL reads",
}

#: Files whose good features are screened around the bad one: their ids and verdicts.
SCREENED = {
    "list_attribute.geojson": [("L2", "pass")],
    "flat_polygon.geojson": [("F2", "pass")],
    "gk_outlier.geojson": [("G1", "pass"), ("G2", "pass"), ("G3", "pass")],
}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # GDAL's own warnings
@pytest.mark.parametrize(("name", "message"), EXPECTED.items(), ids=list(EXPECTED))
def test_bad_input_is_one_clear_line(run, name, message):
    result = run("screen", BAD / name)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"Error: {BAD / name}")
    assert message in errors[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("name", "screened"), SCREENED.items(), ids=list(SCREENED))
def test_the_good_features_around_a_bad_one_are_screened(run, name, screened):
    result = run("screen", BAD / name, "--format", "json")
    assert result.exit_code == 2
    assert [(v["project"]["id"], v["verdict"]) for v in map(json.loads, result.stdout.splitlines())] == screened
