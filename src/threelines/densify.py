"""Long straight edges cut into pieces before they are reprojected, so that they stay where GIS draws them.

A GIS draws an edge straight in the CRS its geometry is stored in. Reprojected
vertex by vertex, a long edge would come out straight in the working CRS
instead, up to metres away from where it was drawn. Footprints and layers are
therefore densified in their own CRS first (:func:`densify`), to within
:data:`EDGE_TOLERANCE_M`.
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import CRS

from threelines.limits import MAX_DENSIFY_PIECES

#: A straight edge in a layer's or footprint's own CRS lies within this (m) of where it is drawn in
#: the working CRS: edges are cut into pieces of at most :data:`DENSIFY_STEP_DEG` (longitude/latitude)
#: or :data:`DENSIFY_STEP_M` (projected) before reprojecting.
EDGE_TOLERANCE_M = 0.01

#: The longest piece (degrees) of a longitude/latitude edge. A line straight in longitude/latitude
#: bends in a projection by at most about 1/(2000 km) per metre in China (a parallel at 53 N in an
#: Albers projection: 1/4,800 km), so its sagitta over 0.003 degrees (<= 334 m) stays below 7 mm
#: (2 mm measured, over China's provinces).
DENSIFY_STEP_DEG = 0.003

#: The longest piece (m) of a projected edge. Between two projections in metres (a Gauss-Kruger
#: zone and the working Albers) a straight line bends little: over 1 km, at a zone's edge in an
#: Albers fitted to a whole province, its sagitta is 4 mm at most.
DENSIFY_STEP_M = 1000.0

#: Bumped when how edges are densified changes (part of the prepared-layer cache key).
DENSIFY_VERSION = 1


def densify_step(crs: CRS) -> float:
    """The longest edge (in the CRS's units) that stays within :data:`EDGE_TOLERANCE_M` when reprojected."""
    return DENSIFY_STEP_DEG if crs.is_geographic else DENSIFY_STEP_M


def densify(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """Cut long straight edges into pieces, in the geometries' own CRS, before they are reprojected.

    GIS draws an edge straight in the CRS it is stored in; reprojecting only
    the two vertices would draw it straight in the working CRS instead (for a
    31 km longitude/latitude edge, 10 m away). Edges already shorter than
    :func:`densify_step` are left as they are, and so are invalid geometries
    (repaired later, with a warning that names them).

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries
    crs : pyproj.CRS
        The CRS the coordinates are in.

    Returns
    -------
    numpy.ndarray
    """
    geoms = np.asarray(geoms, dtype=object)
    step = densify_step(crs)
    # Only what can hold a long edge: most footprints are smaller than one step all round. A geometry
    # too long to cut (an impossible coordinate, metres read as degrees) is left for the checks to refuse.
    with np.errstate(over="ignore", invalid="ignore"):
        length = shapely.length(geoms)
    long = np.isfinite(length) & (length > step) & (length <= MAX_DENSIFY_PIECES * step)
    long[long] = shapely.is_valid(geoms[long])
    if not long.any():
        return geoms
    out = geoms.copy()
    out[long] = shapely.segmentize(geoms[long], step)
    return out
