"""The corpus of broken inputs under tests/data/bad: each gives one clear line and exit 2."""

from __future__ import annotations

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
