"""Curves built from straight pieces that lie outside the true curve, and within a tolerance of it.

A disc around a point site, a line's round joins and a distance band around
a feature are polygons: their vertices are placed so that every edge lies
outside the true curve (a trigger is never lost) and at most
:data:`CURVE_TOLERANCE_M` from it (a site gains one at most that much too
early). A disc is also known again once drawn (:func:`disc_centres`), so that
its distances are measured from the true circle.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

#: Every curve built from straight pieces (a disc, a line's round joins, a distance band around a
#: feature) lies outside the true curve and at most this far (m) from it: a trigger is never lost,
#: and a site gains one at most this much too early.
CURVE_TOLERANCE_M = 0.01

#: A disc (a point site's radius) lies also at most this share of its radius outside the true
#: circle, so that its overlaps are within this share of the exact ones. Only discs: for a line's
#: joins or a distance band, a small radius would need hundreds of vertices per join, which slowed
#: the screening of roads several times over for no change of verdict.
CURVE_RELATIVE_TOLERANCE = 1e-6


def curve_segments(radius_m: float, relative: float | None = None) -> int:
    """Segments per quarter circle for a curve of this radius, to :data:`CURVE_TOLERANCE_M`.

    A polygon whose vertices lie on a circle of radius ``r / cos(pi / (4 q))``
    contains the circle of radius ``r``; its edges lie at most
    ``r (1 / cos(pi / (4 q)) - 1)`` outside it. ``q`` is the least count that keeps
    that below :data:`CURVE_TOLERANCE_M` (and below ``relative`` x r, when given).

    Parameters
    ----------
    radius_m : float
        The radius (a disc's, half a line's width, a distance band's).
    relative : float, optional
        A tolerance as a share of the radius too (discs: :data:`CURVE_RELATIVE_TOLERANCE`).

    Returns
    -------
    int
    """
    radius_m = abs(float(radius_m))
    if radius_m == 0:
        return 1
    allowed = CURVE_TOLERANCE_M / radius_m if relative is None else min(CURVE_TOLERANCE_M / radius_m, relative)
    # 1/cos(t) - 1 <= allowed  <=>  t <= acos(1 / (1 + allowed))
    return max(1, math.ceil(math.pi / 4 / math.acos(1.0 / (1.0 + allowed))))


def outer_radius(radius_m: float, quad_segs: int) -> float:
    """The vertex radius at which a ``quad_segs`` polygon contains the circle of ``radius_m``."""
    return float(radius_m) / math.cos(math.pi / (4 * quad_segs))


def outer_buffer(geometry, distance_m: float, relative: float | None = None, **kwargs):
    """``shapely.buffer`` that contains the true buffer and lies within the curve tolerances of it.

    Parameters
    ----------
    geometry : shapely geometry or numpy.ndarray of them
    distance_m : float
        The buffer distance (positive).
    relative : float, optional
        As for :func:`curve_segments`.
    **kwargs
        Passed on to :func:`shapely.buffer` (``cap_style``, ``join_style``).

    Returns
    -------
    shapely geometry or numpy.ndarray
    """
    quad_segs = curve_segments(distance_m, relative)
    return shapely.buffer(geometry, outer_radius(distance_m, quad_segs), quad_segs=quad_segs, **kwargs)


def disc(points, radius_m: float):
    """The disc of ``radius_m`` around points, as :func:`outer_buffer` builds it.

    Its exact area is ``pi r^2`` (:func:`disc_area`); the polygon's exceeds it
    by less than two thirds of :data:`CURVE_RELATIVE_TOLERANCE`.
    """
    return outer_buffer(points, radius_m, CURVE_RELATIVE_TOLERANCE)


def disc_area(radius_m: float, parts: int = 1) -> float:
    """The exact area of ``parts`` discs of ``radius_m`` that do not overlap."""
    return parts * math.pi * float(radius_m) ** 2


def disc_centres(footprints: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Per footprint, the centre of the :func:`disc` it is (None where it is not one).

    A footprint is taken for the disc of its radius only when it has that
    disc's vertex count and every vertex lies at that disc's vertex radius
    from its centroid: a drawn polygon with a ``radius`` attribute is not.
    """
    out = np.full(len(footprints), None, dtype=object)
    radii = np.asarray(radii, dtype=float)
    if not (radii > 0).any():  # most batches and every drawn site: no radius to check
        return out
    radii = np.nan_to_num(radii, nan=0.0)
    candidates = np.flatnonzero((radii > 0) & (shapely.get_type_id(footprints) == shapely.GeometryType.POLYGON))
    if not len(candidates):
        return out
    shapes, r = footprints[candidates], radii[candidates]
    # Point sites share a few radii: each radius's segment count and vertex radius are worked out once.
    kinds, kind = np.unique(r, return_inverse=True)
    quad_segs = np.array([curve_segments(x, CURVE_RELATIVE_TOLERANCE) for x in kinds.tolist()], dtype=int)
    vertex_radius = np.array([outer_radius(x, q) for x, q in zip(kinds.tolist(), quad_segs.tolist(), strict=True)])
    rings = shapely.get_exterior_ring(shapes)
    shaped = (shapely.get_num_coordinates(rings) == 4 * quad_segs[kind] + 1) & (
        shapely.get_num_interior_rings(shapes) == 0
    )
    if not shaped.any():
        return out
    candidates, shapes, r, kind = candidates[shaped], shapes[shaped], r[shaped], kind[shaped]
    centres = shapely.centroid(shapes)
    ring, owner = shapely.get_coordinates(rings[shaped], return_index=True)
    spread = np.abs(
        np.hypot(ring[:, 0] - shapely.get_x(centres)[owner], ring[:, 1] - shapely.get_y(centres)[owner])
        - vertex_radius[kind][owner]
    )
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    round_ = np.maximum.reduceat(spread, starts) <= 1e-6 * r
    out[candidates[round_]] = centres[round_]
    return out
