"""Overlap and distance between footprints and a layer's features, in bulk.

One spatial-index query per layer finds every (project, feature) pair within
reach; intersections are computed only for pairs that intersect, and a
footprint lying wholly inside a feature is measured without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

#: Square metres in one mu (亩): 10000 / 15.
M2_PER_MU = 10000.0 / 15.0

#: Overlaps smaller than this (m2) are numerical noise along shared edges.
OVERLAP_FLOOR_M2 = 0.01

#: Distances shorter than this (m) are reprojection noise: the two touch.
DISTANCE_FLOOR_M = 0.001


@dataclass(frozen=True)
class Pairs:
    """Measures for every (project, feature) pair within reach, as parallel arrays.

    Attributes
    ----------
    project, feature : numpy.ndarray of int
        Positions in the projects and in the layer.
    distance_m : numpy.ndarray
        Shortest distance in metres (0 where they intersect or are closer
        than :data:`DISTANCE_FLOOR_M`).
    overlap_m2 : numpy.ndarray
        Area of the intersection in square metres.
    inside : numpy.ndarray of bool
        The footprint lies wholly inside the feature.
    """

    project: np.ndarray
    feature: np.ndarray
    distance_m: np.ndarray
    overlap_m2: np.ndarray
    inside: np.ndarray


#: The fields of :class:`Pairs`, in order.
PAIR_FIELDS = ("project", "feature", "distance_m", "overlap_m2", "inside")


def measure_pairs(footprints: np.ndarray, areas: np.ndarray, tree: shapely.STRtree, reach_m: float) -> Pairs:
    """Measure every footprint against the features of one layer.

    Parameters
    ----------
    footprints : numpy.ndarray of shapely geometries
        Footprints in the working CRS (metres).
    areas : numpy.ndarray
        Their areas (0 for points).
    tree : shapely.STRtree
        The layer's spatial index, over geometries in the same CRS.
    reach_m : float
        Pairs up to this distance apart are measured; 0 for touching only.

    Returns
    -------
    Pairs
    """
    features = tree.geometries
    if len(footprints) == 0 or len(features) == 0:
        empty = np.empty(0)
        return Pairs(empty.astype(int), empty.astype(int), empty, empty, empty.astype(bool))
    # At least the distance floor, so that what counts as touching never depends on the reach
    # other rules on the layer happen to ask for.
    left, right = tree.query(footprints, predicate="dwithin", distance=max(reach_m, DISTANCE_FLOOR_M))
    a, b = footprints[left], np.asarray(features)[right]
    meets = shapely.intersects(a, b)
    distance = np.zeros(len(left))
    distance[~meets] = shapely.distance(a[~meets], b[~meets])
    distance[distance < DISTANCE_FLOOR_M] = 0.0
    inside = np.zeros(len(left), dtype=bool)
    inside[meets] = shapely.covered_by(a[meets], b[meets])
    overlap = np.zeros(len(left))
    overlap[inside] = areas[left[inside]]
    cut = meets & ~inside & (areas[left] > 0)
    overlap[cut] = shapely.area(shapely.intersection(a[cut], b[cut]))
    # A footprint drawn along a feature's edge can miss covered_by by float noise.
    inside |= meets & (areas[left] > 0) & (areas[left] - overlap <= OVERLAP_FLOOR_M2)
    return Pairs(left, right, distance, overlap, inside)
