"""A footprint given as WKT on the command line (``--wkt``)."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import shapely

from threelines.errors import FootprintError
from threelines.input.vector_files import first_line, gdal_reason

log = logging.getLogger(__name__)


def wkt_frame(text: str):
    """A one-feature GeoDataFrame from ``--wkt`` (no CRS: ``--crs`` or the coordinates say).

    Raises
    ------
    FootprintError
        As :func:`parse_wkt`.
    """
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"id": ["wkt"]}, geometry=[parse_wkt(text)], crs=None)
    frame.attrs["label"] = "--wkt"
    return frame


def parse_wkt(text: str):
    """The footprint given as WKT (``--wkt``), as a shapely geometry.

    An unclosed ring, as pasted by hand, is closed with a warning. Curved
    geometries (CIRCULARSTRING, CURVEPOLYGON, ...), which shapely cannot
    hold, are linearised by GDAL (arcs become short segments), with a warning.

    Raises
    ------
    FootprintError
        If the text cannot be parsed (with the parser's reason) or the
        geometry is empty.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)  # NaN: reported later
            geom = shapely.from_wkt(text)
    except NotImplementedError:
        geom = _linearised(text)
    except shapely.errors.ShapelyError as exc:
        reason = first_line(exc)
        if "ParseException" in reason:
            raise FootprintError(
                f"--wkt: cannot parse it as WKT ({reason}); check the brackets and that vertices are 'x y' pairs "
                "separated by commas"
            ) from None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            geom = shapely.from_wkt(text, on_invalid="fix")  # an unclosed ring: close it, and say so
        if geom is None:
            raise FootprintError(f"--wkt: not a valid geometry ({reason})") from None
        log.warning("--wkt: closed a ring that was not closed; check the coordinates")
    if geom is None or geom.is_empty:
        raise FootprintError("--wkt: the geometry is empty (e.g. POLYGON EMPTY); give its coordinates")
    return geom


def _linearised(text: str):
    """A curved WKT geometry linearised by GDAL (its CSV reader parses WKT with curves, shapely does not)."""
    import pyogrio

    with tempfile.TemporaryDirectory(prefix="threelines-wkt-") as folder:
        path = Path(folder) / "wkt.csv"
        path.write_text('WKT\n"' + text.replace('"', "") + '"\n', encoding="utf-8")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # GDAL's own note on unparsable WKT: None below says it
                frame = pyogrio.read_dataframe(path)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise FootprintError(f"--wkt: cannot parse the curved geometry ({gdal_reason(exc)})") from None
    geom = frame.geometry.iloc[0] if len(frame) else None
    if geom is None:
        raise FootprintError(
            "--wkt: cannot parse the curved geometry (CIRCULARSTRING, CURVEPOLYGON, ...); check its brackets and "
            "vertices, or convert it to a POLYGON or LINESTRING"
        )
    log.warning("--wkt: a curved geometry; its arcs were replaced by short straight segments")
    return geom
