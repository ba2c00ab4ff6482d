"""Coordinate reference systems: parsing, web-map offsets, the working CRS.

Parse what users give, convert GCJ-02 web-map offsets, and choose the
equal-area working CRS every measurement is made in.

All overlay work happens in one working CRS per layer set: a CGCS2000 Albers
equal-area projection fitted to the layers' extent. Areas are exact in it, and
with standard parallels at 1/6 and 5/6 of the extent's latitude span the scale
error (hence the error of a distance) stays under 0.1 % across a province.
"""

from __future__ import annotations

import numpy as np
from pyproj import CRS, Transformer
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import AlbersEqualAreaConversion
from pyproj.exceptions import CRSError as _ProjCRSError

from threelines.errors import CRSError

#: Geographic CGCS2000, the datum of Chinese survey data (agrees with WGS84 to < 1 m).
CGCS2000 = "EPSG:4490"

#: Names accepted for web-map offset coordinates (no EPSG code exists for them).
GCJ02_NAMES = frozenset({"gcj02", "gcj-02", "gcj"})


def parse_crs(value: object, *, what: str = "--crs") -> CRS:
    """Parse a CRS given as an EPSG code, ``EPSG:xxxx``, WKT or PROJ string.

    Parameters
    ----------
    value : str, int or pyproj.CRS
        What the user gave. A bare number is an EPSG code.
    what : str
        Where it came from, for the error message.

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CRSError
        If pyproj cannot understand it, or it names the GCJ-02 web-map
        offset, which is not a CRS (see :func:`gcj02_to_wgs84`).
    """
    if isinstance(value, CRS):
        return value
    text = str(value).strip()
    if text.lower() in GCJ02_NAMES:
        raise CRSError(
            f"{what}: GCJ-02 web-map coordinates are not read yet; convert them to WGS84 first "
            "(the offset is 300-600 m in Jiangxi: screening them as WGS84 would be wrong)"
        )
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        return CRS.from_user_input(text)
    except _ProjCRSError as exc:
        raise CRSError(
            f"{what}: {value!r} is not a CRS pyproj understands ({exc}); "
            "give an EPSG code such as 4490 or 4527, or a WKT/PROJ string"
        ) from None


def fitted_albers(bounds: tuple[float, float, float, float]) -> CRS:
    """Return a CGCS2000 Albers equal-area CRS fitted to a lon/lat extent.

    Parameters
    ----------
    bounds : tuple of float
        ``(min_lon, min_lat, max_lon, max_lat)`` in degrees.

    Returns
    -------
    pyproj.CRS
        Central meridian at the extent's centre and standard parallels at
        1/6 and 5/6 of its latitude span, all rounded to 0.1 degree so that
        small data edits do not move the working CRS.
    """
    min_lon, min_lat, max_lon, max_lat = bounds
    span = max(max_lat - min_lat, 0.0)
    lat_1 = round(min_lat + span / 6, 1)
    lat_2 = round(max_lat - span / 6, 1)
    centre_lat = round((min_lat + max_lat) / 2, 1)
    centre_lon = round((min_lon + max_lon) / 2, 1)
    conversion = AlbersEqualAreaConversion(
        latitude_first_parallel=lat_1,
        latitude_second_parallel=lat_2,
        latitude_false_origin=centre_lat,
        longitude_false_origin=centre_lon,
    )
    return ProjectedCRS(
        conversion=conversion,
        geodetic_crs=CRS.from_epsg(4490),
        name=f"CGCS2000 / Albers equal-area {lat_1}N {lat_2}N lon_0 {centre_lon}E",
    )


def bounds_to_lonlat(bounds: tuple[float, float, float, float], crs: CRS) -> tuple[float, ...]:
    """Transform a bounding box to CGCS2000 longitude/latitude (densified edges)."""
    transformer = Transformer.from_crs(crs, CGCS2000, always_xy=True)
    return tuple(transformer.transform_bounds(*bounds, densify_pts=21))


# GCJ-02 ("Mars coordinates"): the offset Chinese web maps (Amap, Tencent) apply
# to WGS84. The forward formula is public; it is an obfuscation, not a datum,
# so it has no inverse in closed form and is inverted by fixed-point iteration.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the GCJ-02 offset (dlon, dlat) in degrees at WGS84 lon/lat."""
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad = lat / 180.0 * pi
    magic = 1.0 - _GCJ_EE * np.sin(rad) ** 2
    dlat = (dlat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * np.sqrt(magic)) * pi)
    dlon = (dlon * 180.0) / (_GCJ_A / np.sqrt(magic) * np.cos(rad) * pi)
    return dlon, dlat


def wgs84_to_gcj02(lonlat: np.ndarray) -> np.ndarray:
    """Apply the GCJ-02 offset to an ``(N, 2)`` array of WGS84 lon/lat.

    Examples
    --------
    >>> wgs84_to_gcj02(np.array([[116.397428, 39.90923]])).round(6)
    array([[116.403672,  39.910634]])
    """
    lonlat = np.asarray(lonlat, dtype=float)
    dlon, dlat = _gcj_delta(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([lonlat[:, 0] + dlon, lonlat[:, 1] + dlat])


def gcj02_to_wgs84(lonlat: np.ndarray, *, tolerance: float = 1e-10) -> np.ndarray:
    """Remove the GCJ-02 offset from an ``(N, 2)`` array of lon/lat.

    Fixed-point iteration on the forward offset; converges to ``tolerance``
    degrees (1e-10 degree is about 0.01 mm) in a handful of steps.
    """
    target = np.asarray(lonlat, dtype=float)
    guess = target.copy()
    for _ in range(30):
        error = wgs84_to_gcj02(guess) - target
        guess -= error
        if np.abs(error).max(initial=0.0) < tolerance:
            break
    return guess
