"""Overlap and distance between footprints and a layer's features, in bulk.

One spatial-index query per layer finds every (project, feature) pair within
reach (those that intersect, and those near enough); intersections are
computed only for pairs that intersect, a footprint lying wholly inside a
feature (or a feature inside a footprint) is measured without one, and a
large feature is cut to the footprint's box before the intersection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from threelines.arrays import sorted_distinct
from threelines.curves import disc_centres

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


def measure_pairs(
    footprints: np.ndarray,
    areas: np.ndarray,
    tree: shapely.STRtree,
    reach_m: float,
    radii: np.ndarray | None = None,
    *,
    far: np.ndarray | None = None,
    centres: np.ndarray | None = None,
) -> Pairs:
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
    radii : numpy.ndarray, optional
        Per footprint, the radius of a point site (0 or NaN for others). A
        footprint that is the :func:`~threelines.curves.disc` of that radius is measured as the
        true circle: its distance to a feature is the centre's distance minus
        the radius.
    far : numpy.ndarray of bool, optional
        Per feature of the layer, whether it is wanted up to ``reach_m``; the
        others only where they touch a footprint (within
        :data:`DISTANCE_FLOOR_M`). None: every feature up to ``reach_m``.
    centres : numpy.ndarray, optional
        The footprints' :func:`disc_centres` for ``radii``, when the caller
        already has them.

    Returns
    -------
    Pairs
    """
    features = tree.geometries
    if len(footprints) == 0 or len(features) == 0:
        empty = np.empty(0)
        return Pairs(empty.astype(int), empty.astype(int), empty, empty, empty.astype(bool))
    features = np.asarray(features)
    # At least the distance floor, so that what counts as touching never depends on the reach
    # other rules on the layer happen to ask for.
    reach_m = max(reach_m, DISTANCE_FLOOR_M)
    if radii is not None and centres is None:
        centres = disc_centres(footprints, radii)
    left, right, meets, inside, distance = _pairs_within(footprints, features, tree, reach_m, far, radii, centres)
    order = np.lexsort((right, left))  # by footprint, then feature
    left, right, meets, inside, distance = left[order], right[order], meets[order], inside[order], distance[order]
    circle, true = _circle_distances(footprints, radii, left, None if radii is None else features[right], centres)
    distance[distance < DISTANCE_FLOOR_M] = 0.0
    overlap = np.zeros(len(left))
    overlap[inside] = areas[left[inside]]
    cut = np.flatnonzero(meets & ~inside & (areas[left] > 0))
    overlap[cut] = _overlap_areas(footprints[left[cut]], features[right[cut]])
    # A footprint drawn along a feature's edge can miss covered_by by float noise.
    inside |= meets & (areas[left] > 0) & (areas[left] - overlap <= OVERLAP_FLOOR_M2)
    # The polygon lies up to the curve tolerance outside the circle: where the circle itself
    # does not reach the feature, neither does the site.
    apart = circle[true > DISTANCE_FLOOR_M]
    distance[apart] = true[true > DISTANCE_FLOOR_M]
    overlap[apart] = 0.0
    inside[apart] = False
    return Pairs(left, right, distance, overlap, inside)


def _pairs_within(
    footprints: np.ndarray,
    features: np.ndarray,
    tree: shapely.STRtree,
    reach: float,
    far: np.ndarray | None = None,
    radii: np.ndarray | None = None,
    centres: np.ndarray | None = None,
):
    """Every (footprint, feature) pair at most ``reach`` apart: positions, whether they meet, covered, distance.

    One query of the layer's tree with the footprints' boxes grown by
    ``reach`` gives the candidates (work in proportion to the footprints
    and what lies near them, not to the whole layer); the features (those
    met by several footprints prepared) then tell which cover their
    footprint (only a feature whose box holds the footprint's can), which
    of the others intersect theirs (a feature that covers a footprint
    intersects it: it is not asked twice), and the distances of the rest
    (see :func:`_distances`) which come within reach. A feature whose box
    misses the footprint's is rejected by the test on the boxes alone.
    Features that ``far`` leaves out are kept only within
    :data:`DISTANCE_FLOOR_M`, their boxes tested first.

    The distance is 0 for the pairs that intersect, and for a :func:`~threelines.curves.disc`
    (``radii``, ``centres`` as for :func:`measure_pairs`) whose true circle
    lies beyond the floor from the feature: the circle's distance replaces
    the polygon's, which is only tested for reach (a distance would cost
    one per edge of the polygon's thousands).
    """
    box = shapely.bounds(footprints)
    grown = shapely.box(box[:, 0] - reach, box[:, 1] - reach, box[:, 2] + reach, box[:, 3] + reach)
    left, right = tree.query(grown)
    at, to = shapely.bounds(features[right]), box[left]
    if far is not None:
        # Only touching counts for these: a box farther than the floor from the footprint's cannot.
        floor = DISTANCE_FLOOR_M
        apart = (at[:, :2] > to[:, 2:] + floor).any(axis=1) | (at[:, 2:] < to[:, :2] - floor).any(axis=1)
        keep = far[right] | ~apart
        left, right, at, to = left[keep], right[keep], at[keep], to[keep]
    # A feature tested against several footprints is prepared (GEOS keeps the index on the geometry, for
    # later chunks too): it is then tested through its index, not edge by edge. One met by a few footprints
    # is not: building its index would cost more than it saves (see _intersects).
    shapely.prepare(features[np.bincount(right, minlength=len(features)) >= PREPARE_MIN_PAIRS])
    inside = np.zeros(len(left), dtype=bool)
    boxed = np.flatnonzero((at[:, :2] <= to[:, :2]).all(axis=1) & (at[:, 2:] >= to[:, 2:]).all(axis=1))
    inside[boxed] = shapely.covers(features[right[boxed]], footprints[left[boxed]])
    meets = inside.copy()
    # A feature whose box misses the footprint's does not meet it: only the others are asked.
    rest = np.flatnonzero(~inside & (at[:, :2] <= to[:, 2:]).all(axis=1) & (at[:, 2:] >= to[:, :2]).all(axis=1))
    meets[rest] = _intersects(features, footprints, right[rest], left[rest])
    near = np.flatnonzero(~meets)
    within = (
        np.full(len(near), reach) if far is None else np.where(far[right[near]], reach, min(reach, DISTANCE_FLOOR_M))
    )
    circle = np.zeros(len(near), dtype=bool)
    ks, true = _circle_distances(footprints, radii, left[near], features[right[near]], centres)
    circle[ks[true > DISTANCE_FLOOR_M]] = True
    close = meets.copy()
    shapes, measured = near[circle], near[~circle]
    close[shapes] = shapely.dwithin(features[right[shapes]], footprints[left[shapes]], within[circle])
    distance = np.zeros(len(left))
    distance[measured] = _distances(footprints, features, left[measured], right[measured], within[~circle])
    close[measured] = distance[measured] <= within[~circle]
    return left[close], right[close], meets[close], inside[close], distance[close]


def _intersects(features: np.ndarray, footprints: np.ndarray, right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Whether each feature meets its footprint, through the feature's index where it has one, else the footprint's.

    A feature left unprepared (met by few footprints) is tested through its
    footprint's index instead: each footprint is prepared once, for every
    layer, and the predicate gives the same answer either way round.
    """
    by_feature = shapely.is_prepared(features[right])
    if not by_feature.all():
        shapely.prepare(footprints[sorted_distinct(left[~by_feature])])
    out = np.empty(len(right), dtype=bool)
    out[by_feature] = shapely.intersects(features[right[by_feature]], footprints[left[by_feature]])
    out[~by_feature] = shapely.intersects(footprints[left[~by_feature]], features[right[~by_feature]])
    return out


#: A feature is prepared for the predicates when it is tested against at least this many footprints at once
#: (on the hard benchmark set, 5 made the intersects and covers tests 1.3x cheaper than preparing every feature).
PREPARE_MIN_PAIRS = 5

#: Segments of a feature's ring in one block of :func:`_distances`: a block whose box lies beyond reach of a
#: footprint's box is left out of its distance.
RING_BLOCK = 16


def _distances(
    footprints: np.ndarray, features: np.ndarray, left: np.ndarray, right: np.ndarray, within: np.ndarray
) -> np.ndarray:
    """The distance of each pair that does not intersect, where it is at most ``within`` (inf where it is more).

    GEOS measures the distance between two polygons that do not intersect
    as the least distance between a segment of one and a segment of the
    other, trying every pair of segments: for a footprint near a feature of
    hundreds of vertices, most of the feature's are far out of reach. So a
    polygonal feature's rings are cut into blocks of :data:`RING_BLOCK`
    segments (:func:`_ring_blocks`), and only the blocks whose boxes come
    within ``within`` of the footprint's box are measured, as lines of the
    very same vertices: the segment nearest the footprint is among them
    whenever the pair is within reach, so the distance is the one GEOS
    gives for the whole feature (the same segments, the same arithmetic).
    A pair with no block in reach is farther than ``within``. Other
    features are measured whole.
    """
    out = np.full(len(left), np.inf)
    polygonal = np.isin(shapely.get_type_id(features[right]), POLYGONAL_TYPES)
    whole = np.flatnonzero(~polygonal)
    out[whole] = shapely.distance(footprints[left[whole]], features[right[whole]])
    pairs = np.flatnonzero(polygonal)
    if not len(pairs):
        return out
    used, feature_of = np.unique(right[pairs], return_inverse=True)
    xy, first, last, ring, box, feature_blocks = _ring_blocks(features[used])
    feature_start = np.cumsum(feature_blocks) - feature_blocks
    # Every block of each pair's feature, against the footprint's box (with a margin for rounding).
    count = feature_blocks[feature_of]
    pair = np.repeat(np.arange(len(pairs)), count)
    block = np.repeat(feature_start[feature_of] - np.cumsum(count) + count, count) + np.arange(count.sum())
    near = shapely.bounds(footprints[left[pairs]])[pair]
    dx = np.maximum(np.maximum(box[block, 0] - near[:, 2], near[:, 0] - box[block, 2]), 0.0)
    dy = np.maximum(np.maximum(box[block, 1] - near[:, 3], near[:, 1] - box[block, 3]), 0.0)
    reach = within[pairs][pair]
    keep = np.hypot(dx, dy) <= reach * (1 + 1e-9) + 1e-6
    pair, block = pair[keep], block[keep]
    if not len(pair):
        return out
    # Consecutive blocks of one ring make one line, from the first one's first vertex to the last one's last;
    # a pair's distance is the least of its lines'.
    run = np.flatnonzero(
        np.r_[True, (pair[1:] != pair[:-1]) | (block[1:] != block[:-1] + 1) | (ring[block[1:]] != ring[block[:-1]])]
    )
    start, stop = first[block[run]], last[block[np.r_[run[1:], len(block)] - 1]]
    size = stop - start + 1
    vertex = np.repeat(start - np.cumsum(size) + size, size) + np.arange(size.sum())
    lines = shapely.linestrings(xy[vertex], indices=np.repeat(np.arange(len(run)), size))
    distance = shapely.distance(footprints[left[pairs[pair[run]]]], lines)
    ends = np.flatnonzero(np.r_[pair[run][1:] != pair[run][:-1], True])
    out[pairs[pair[run][ends]]] = np.minimum.reduceat(distance, np.r_[0, ends[:-1] + 1])
    return out


#: shapely type ids of polygons and multipolygons.
POLYGONAL_TYPES = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def _ring_blocks(features: np.ndarray):
    """The rings of polygonal features as one array of vertices, cut into blocks of :data:`RING_BLOCK` segments.

    Returns the vertices, and per block its first and last vertex, its
    ring, its box (x0, y0, x1, y1); and per feature its number of blocks
    (the blocks come feature after feature). A polygon without holes is
    its own ring: only the others (with holes, or of several parts) are
    taken apart.
    """
    holed = (shapely.get_type_id(features) != shapely.GeometryType.POLYGON) | (
        shapely.get_num_interior_rings(features) > 0
    )
    parts, owner = features, np.arange(len(features))
    if holed.any():
        polygons, of = shapely.get_parts(features[holed], return_index=True)
        rings, at = shapely.get_rings(polygons, return_index=True)
        parts = np.concatenate([features[~holed], rings])
        owner = np.concatenate([owner[~holed], np.flatnonzero(holed)[of[at]]])
        order = np.argsort(owner, kind="stable")
        parts, owner = parts[order], owner[order]
    xy, ring_of = shapely.get_coordinates(parts, return_index=True)
    vertices = np.bincount(ring_of, minlength=len(parts))
    segments = np.maximum(vertices - 1, 0)
    blocks = -(-segments // RING_BLOCK)
    ring = np.repeat(np.arange(len(parts)), blocks)
    ring_first = np.cumsum(vertices) - vertices
    first = ring_first[ring] + RING_BLOCK * (np.arange(len(ring)) - np.repeat(np.cumsum(blocks) - blocks, blocks))
    last = np.minimum(first + RING_BLOCK, (ring_first + segments)[ring])
    box = np.empty((len(first), 4))
    if len(first):  # a block's box: its vertices up to the next block's first (reduceat), and its last one
        box[:, :2] = np.minimum(np.minimum.reduceat(xy, first, axis=0), xy[last])
        box[:, 2:] = np.maximum(np.maximum.reduceat(xy, first, axis=0), xy[last])
    return xy, first, last, ring, box, np.bincount(owner[ring], minlength=len(features))


#: A feature with more vertices than this is first cut to the box of the footprint it is intersected with.
CLIP_MIN_VERTICES = 64


def _overlap_areas(footprints: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The area of each footprint's intersection with its feature (pairs that intersect, neither inside the other).

    A feature lying wholly inside the footprint's box (within it, when
    ``covers`` says so) is its own overlap. A large feature is first cut to
    the footprint's box (``clip_by_rect``, a linear pass that takes one box
    per call): the intersection then only sees the few of its vertices
    near the footprint, which halved its time on features of 300 vertices
    or more (the features of one footprint are cut in one call). The cut can
    leave a feature's ring touching itself; if GEOS refuses such a piece,
    the intersections are made with the whole features.
    """
    out = np.empty(len(footprints))
    if not len(footprints):
        return out
    fp_box, feature_box = shapely.bounds(footprints), shapely.bounds(features)
    boxed = (fp_box[:, :2] <= feature_box[:, :2]).all(axis=1) & (fp_box[:, 2:] >= feature_box[:, 2:]).all(axis=1)
    whole = np.zeros(len(footprints), dtype=bool)
    whole[boxed] = shapely.covers(footprints[boxed], features[boxed])
    out[whole] = shapely.area(features[whole])
    rest = np.flatnonzero(~whole)
    pieces = features[rest].copy()
    big = np.flatnonzero(~boxed[rest] & (shapely.get_num_coordinates(pieces) > CLIP_MIN_VERTICES))
    # One call cuts every large feature to its own footprint's box: shapely.clip_by_rect takes a single
    # box, the ufunc under it one per geometry (the same GEOS operation, without a call per footprint).
    boxes = fp_box[rest[big]]
    pieces[big] = shapely.lib.clip_by_rect(pieces[big], boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])
    try:
        out[rest] = shapely.area(shapely.intersection(footprints[rest], pieces))
    except shapely.errors.GEOSException:
        out[rest] = shapely.area(shapely.intersection(footprints[rest], features[rest]))
    return out


def _circle_distances(footprints, radii, left, features, centres=None) -> tuple[np.ndarray, np.ndarray]:
    """The pairs whose footprint is a :func:`~threelines.curves.disc` (positions), and its true circle's distances."""
    if radii is None:
        return np.empty(0, dtype=int), np.empty(0)
    radii = np.asarray(radii, dtype=float)
    if centres is None:
        centres = disc_centres(footprints, radii)
    ks = np.flatnonzero(centres[left] != None)  # noqa: E711
    return ks, shapely.distance(centres[left[ks]], features[ks]) - radii[left[ks]]
