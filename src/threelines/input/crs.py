"""Coordinate reference systems: parsing, web-map offsets, the working CRS.

Parse what users give, convert GCJ-02 web-map offsets, and choose the
equal-area working CRS every measurement is made in.

All overlay work happens in one working CRS per layer set: a CGCS2000 Albers
equal-area projection fitted to the layers' extent. Areas are exact in it, and
with standard parallels at 1/6 and 5/6 of the extent's latitude span the scale
error (hence the error of a distance) stays under 0.1 % across a province.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import AlbersEqualAreaConversion
from pyproj.exceptions import CRSError as _ProjCRSError

from threelines.errors import CRSError

#: Geographic CGCS2000, the datum of Chinese survey data (agrees with WGS84 to < 1 m).
CGCS2000 = "EPSG:4490"


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
    if text.lower() in WEB_OFFSETS:
        raise CRSError(
            f"{what}: {text} is a web-map offset, not a CRS; it is accepted for footprints (--crs {text}), "
            "not here: convert the data to CGCS2000 (EPSG:4490) first"
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
    return tuple(_to_lonlat(crs).transform_bounds(*bounds, densify_pts=21))


@lru_cache(maxsize=16)
def _to_lonlat(crs: CRS) -> Transformer:
    return Transformer.from_crs(crs, CGCS2000, always_xy=True)


def to_crs(geoms: np.ndarray, source: CRS, target: CRS) -> np.ndarray:
    """Geometries from one CRS to another (x, y in lon/lat order; z carried where given), as geopandas does.

    The transformer is built once per pair of CRS: building one from the
    PROJ database costs about a millisecond, more than transforming a footprint.
    """
    transformer = kept_transformer(source, target)
    if transformer is None:
        return geoms

    def move(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(*coords.T))

    has_z = shapely.has_z(geoms)
    if not has_z.any():
        return shapely.transform(geoms, move)
    out = geoms.copy()
    out[~has_z] = shapely.transform(geoms[~has_z], move)
    out[has_z] = shapely.transform(geoms[has_z], move, include_z=True)
    return out


#: Transformers by the identity of their CRS objects (hashing a CRS writes its WKT: slower than a transformation).
_TRANSFORMERS: dict[tuple[int, int], tuple[CRS, CRS, Transformer | None]] = {}
#: The same transformers by the texts their CRS were made from (the same text: the same CRS).
_BY_TEXT: dict[tuple[str, str], Transformer | None] = {}
_TRANSFORMERS_LOCK = threading.Lock()


def kept_transformer(source: CRS, target: CRS) -> Transformer | None:
    """The transformer between two CRS, built once for the pair of objects (None: they are the same CRS).

    A pair of other objects made from the same texts (a footprint file's
    ``EPSG:4490`` and the layers' extent's) takes the transformer built for
    them: PROJ would build the same one again, in about 15 ms (a one-project
    screening's own work is not much more). The texts are compared, not the
    CRS: PROJ's comparison parses a CRS again in each thread that asks.
    """
    kept = _TRANSFORMERS.get((id(source), id(target)))
    if kept is not None and kept[0] is source and kept[1] is target:
        return kept[2]
    texts = (source.srs, target.srs)
    if all(isinstance(text, str) for text in texts) and texts in _BY_TEXT:
        transformer = _BY_TEXT[texts]
    elif source.is_exact_same(target):
        transformer = None
    else:
        transformer = Transformer.from_crs(source, target, always_xy=True)
    with _TRANSFORMERS_LOCK:  # requests are read in several threads
        for kept_by in (_TRANSFORMERS, _BY_TEXT):
            if len(kept_by) >= 64:  # CRS of passing files: the oldest pair goes
                kept_by.pop(next(iter(kept_by)))
        _TRANSFORMERS[(id(source), id(target))] = (source, target, transformer)
        if all(isinstance(text, str) for text in texts):
            _BY_TEXT[texts] = transformer
    return transformer


def inside_china(bounds: np.ndarray, crs: CRS) -> np.ndarray:
    """Per row of ``bounds`` (minx, miny, maxx, maxy in ``crs``): do its corners lie in China? Vectorised.

    The rough test :func:`diagnose` makes of one extent, for many extents
    at once (corners only, not densified edges: for a footprint's small box
    the difference is nil).
    """
    corners_x = bounds[:, [0, 2, 0, 2]]
    corners_y = bounds[:, [1, 1, 3, 3]]
    if crs.is_geographic:
        lon, lat = corners_x, corners_y
    else:
        with np.errstate(invalid="ignore"):
            lon, lat = _to_lonlat(crs).transform(corners_x, corners_y)
    with np.errstate(invalid="ignore"):
        inside = (lon >= _CHINA[0]) & (lon <= _CHINA[2]) & (lat >= _CHINA[1]) & (lat <= _CHINA[3])
    return inside.all(axis=1)


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
    return _invert(wgs84_to_gcj02, target, target.copy(), tolerance)


def _invert(forward, target: np.ndarray, guess: np.ndarray, tolerance: float) -> np.ndarray:
    """Solve ``forward(x) = target`` by fixed-point iteration from ``guess`` (the offsets are small and smooth)."""
    for _ in range(30):
        error = forward(guess) - target
        guess = guess - error
        if np.abs(error).max(initial=0.0) < tolerance:
            break
    return guess


# BD-09: Baidu's offset, applied on top of GCJ-02 (public formula; inverted in closed form,
# which is exact to about 1e-6 degree, then refined by iteration below).
_BD_K = np.pi * 3000.0 / 180.0


def gcj02_to_bd09(lonlat: np.ndarray) -> np.ndarray:
    """Apply Baidu's BD-09 offset to an ``(N, 2)`` array of GCJ-02 lon/lat."""
    x, y = np.asarray(lonlat, dtype=float).T
    z = np.hypot(x, y) + 0.00002 * np.sin(y * _BD_K)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _BD_K)
    return np.column_stack([z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006])


def bd09_to_gcj02(lonlat: np.ndarray, *, tolerance: float = 1e-10) -> np.ndarray:
    """Remove the BD-09 offset from an ``(N, 2)`` array of lon/lat (to GCJ-02)."""
    target = np.asarray(lonlat, dtype=float)
    x, y = target[:, 0] - 0.0065, target[:, 1] - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_K)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_K)
    return _invert(gcj02_to_bd09, target, np.column_stack([z * np.cos(theta), z * np.sin(theta)]), tolerance)


def bd09_to_wgs84(lonlat: np.ndarray) -> np.ndarray:
    """Remove both offsets (BD-09, then GCJ-02) from an ``(N, 2)`` array of lon/lat."""
    return gcj02_to_wgs84(bd09_to_gcj02(lonlat))


#: Web-map offsets accepted for ``--crs``: name -> function to WGS84 (= CGCS2000 to < 1 m).
WEB_OFFSETS = {
    "gcj02": gcj02_to_wgs84, "gcj-02": gcj02_to_wgs84, "gcj": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84, "bd-09": bd09_to_wgs84, "bd": bd09_to_wgs84,
}  # fmt: skip


# Rough boxes for sanity checks only (never to decide whether an offset applies).
_CHINA = (73.0, 3.0, 136.0, 54.0)  # lon/lat
_GK_NORTHING = (200_000.0, 6_200_000.0)


def gk_zone_crs(bounds: tuple[float, float, float, float]) -> CRS | None:
    """The CGCS2000 3-degree Gauss-Kruger zone whose prefix the eastings carry, if they carry one.

    Survey data writes the zone number before the easting (zone 39:
    39 512 345.6); EPSG:4513-4533 are zones 25-45 in that form.
    """
    minx, miny, maxx, maxy = bounds
    zone = int(minx // 1_000_000)
    if zone != int(maxx // 1_000_000) or not 25 <= zone <= 45:
        return None
    if not (_GK_NORTHING[0] <= miny and maxy <= _GK_NORTHING[1]):
        return None
    return CRS.from_epsg(4513 + zone - 25)


def diagnose(bounds: tuple[float, float, float, float], crs: CRS | None, label: str, *, strict: bool = False) -> None:
    """Catch the classic coordinate mistakes before anything is screened in the wrong place.

    Parameters
    ----------
    bounds : tuple of float
        The data's extent in its own coordinates.
    crs : pyproj.CRS or None
        What the data is said to be in (None: not said).
    label : str
        The source, for messages.
    strict : bool
        Also refuse projected coordinates that cannot be placed on Earth at
        all (by default left for the footprint reader to report per feature).

    Raises
    ------
    CRSError
        Naming the mistake and the fix: latitude and longitude swapped,
        X (northing) and Y (easting) swapped, projected metres labelled as
        degrees, an unprefixed Gauss-Kruger easting without a zone, or
        coordinates outside China.
    """
    minx, miny, maxx, maxy = bounds
    if crs is None or crs.is_geographic:
        lon_lat = _CHINA[0] <= minx and maxx <= _CHINA[2] and _CHINA[1] <= miny and maxy <= _CHINA[3]
        lat_lon = _CHINA[1] <= minx and maxx <= _CHINA[3] and _CHINA[0] <= miny and maxy <= _CHINA[2]
        if lat_lon and not lon_lat:
            raise CRSError(
                f"{label}: latitude and longitude look swapped ({minx:.4f}, {miny:.4f} is not in China, "
                f"{miny:.4f}, {minx:.4f} is); put longitude first"
            )
        if max(abs(minx), abs(maxx)) > 180 or max(abs(miny), abs(maxy)) > 90:
            if crs is not None:
                raise CRSError(
                    f"{label}: coordinates such as {minx:.1f}, {miny:.1f} are metres, not degrees, but they are "
                    f"said to be in {crs.name}; give the right --crs (e.g. 4527 for a prefixed Gauss-Kruger zone 39 "
                    "easting)"
                )
            if gk_zone_crs((miny, minx, maxy, maxx)) is not None:
                raise CRSError(
                    f"{label}: the eastings and northings look swapped (X {minx:.1f} is a prefixed easting); "
                    "Chinese survey tables label the northing X and the easting Y: swap the columns"
                )
            zones = {int(minx // 1_000_000), int(maxx // 1_000_000)}
            if len(zones) > 1 and all(25 <= z <= 45 for z in zones) and _GK_NORTHING[0] <= miny <= _GK_NORTHING[1]:
                raise CRSError(
                    f"{label}: the eastings carry zone prefixes {' and '.join(map(str, sorted(zones)))}; "
                    "one footprint must be in one zone: convert it, or give --crs for the zone it is in"
                )
            if minx >= 100_000 and maxx <= 900_000 and _GK_NORTHING[0] <= miny <= _GK_NORTHING[1]:
                raise CRSError(
                    f"{label}: eastings like {minx:.1f} carry no zone number; say which 3-degree Gauss-Kruger zone "
                    "with --crs 4534-4554 (central meridians 75E-135E; 4548 is 117E) or add the zone prefix"
                )
            if crs is None:
                return
        if crs is None:
            return
        if not lon_lat:
            raise CRSError(f"{label}: {minx:.4f}, {miny:.4f} lies outside China; check the coordinates and --crs")
        return
    if crs.is_projected:
        lonlat = bounds_to_lonlat(bounds, crs)
        if not all(np.isfinite(lonlat)):
            if strict:
                raise CRSError(
                    f"{label}: in {crs.name} coordinates such as {minx:.1f}, {miny:.1f} cannot be placed on Earth; "
                    "check --crs (the zone, and whether X and Y are swapped)"
                )
            return  # cannot be placed at all: footprint reading reports it per feature
        west, south, east, north = lonlat
        if not (_CHINA[0] <= west and east <= _CHINA[2] and _CHINA[1] <= south and north <= _CHINA[3]):
            raise CRSError(
                f"{label}: in {crs.name} these coordinates lie outside China (around {west:.2f}E {south:.2f}N); "
                "check --crs (the zone, and whether X and Y are swapped)"
            )
