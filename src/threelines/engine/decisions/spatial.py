"""The spatial rules on a layer: ``overlaps``, ``within_distance``, ``inside`` and ``outside``.

The spatial test is a mask over the pairs of the rule's layer; the
``condition`` is decided once per distinct value of what it reads
(:meth:`~threelines.engine.decisions.layer.OnLayer.conditions`).
``overlaps`` and ``within_distance`` fire once per feature that meets the
test; ``inside`` and ``outside`` are decided over all projects at once (the
geometry of a union only where the overlaps could cover the footprint).
"""

from __future__ import annotations

import numpy as np
import shapely

from threelines.engine.compile import distinct_rows
from threelines.engine.decisions.layer import OnLayer
from threelines.engine.decisions.rows import Fired
from threelines.engine.measure import OVERLAP_FLOOR_M2
from threelines.engine.verdict import Unresolved


class Spatial(OnLayer):
    """A spatial rule against the pairs of its layer."""

    def decide(self, footprints: np.ndarray) -> tuple[Fired, list[tuple[int, Unresolved]]]:
        """The rows of the rule: by its test.

        Parameters
        ----------
        footprints : numpy.ndarray of shapely geometries
            In the working CRS (``inside`` and ``outside`` may need the union of features).
        """
        rule, pairs = self.rule, self.pairs
        if rule.test in ("inside", "outside"):
            self.containment(footprints)
        else:
            if rule.test == "overlaps":
                point = (self.table.areas[pairs.project] == 0) & (pairs.distance_m == 0)
                spatial = self.overlapping & (pairs.overlap_m2 > rule.min_overlap_m2) | point
            else:
                spatial = pairs.distance_m <= rule.distance_m
            self.per_feature(spatial)
        return self.fired_rows(), self.notes

    def per_feature(self, spatial: np.ndarray) -> None:
        """``overlaps`` and ``within_distance``: one trigger per feature that meets the test."""
        pairs = self.pairs
        ks = np.flatnonzero(spatial & self.relevant[pairs.project])
        if not len(ks):  # no pair to fire or to note (one project per call: often)
            return
        project = pairs.project[ks]
        pair = self.conditions(self.rule.condition, ks)
        holds, missing = self.holds[project], self.missing[project]
        fire = holds & pair.holds
        pair_undecided = pair.missing != None  # noqa: E711
        by_project = ~fire & (missing != None) & (pair.holds | pair_undecided)  # noqa: E711
        by_pair = ~fire & ~by_project & pair_undecided & holds
        reasons = np.where(by_project, missing, np.where(by_pair, pair.missing, None))
        fids = np.full(len(ks), None, dtype=object)
        if by_pair.any():
            fids[by_pair] = [self.layer.ids[f] for f in pairs.feature[ks[by_pair]].tolist()]
        self.notes_first(project, reasons, fids)
        self.fire(project[fire], ks[fire])

    def containment(self, footprints: np.ndarray) -> None:
        """``inside`` and ``outside``: whether the footprint lies within the union of qualifying features.

        A footprint spread over two adjacent qualifying features (a park cut
        into two units) is inside their union. ``inside`` fires once per
        qualifying feature it overlaps; ``outside`` fires once, with the
        qualifying feature it overlaps most (else the nearest within reach)
        as evidence. Decided for all projects at once: the features that
        surely qualify (``sure``), then those that may (``maybe``, their
        condition undecided).
        """
        pairs, outside, relevant = self.pairs, self.rule.test == "outside", self.relevant
        ks = np.flatnonzero(relevant[pairs.project] & (self.overlapping | outside))
        pair = self.conditions(self.rule.condition, ks)
        keep = pair.holds | (pair.missing != None)  # noqa: E711
        ks, holds, missing = ks[keep], pair.holds[keep], pair.missing[keep]
        project, overlapping = pairs.project[ks], self.overlapping[ks]
        sure = holds & overlapping
        covered = self._covered(project, ks, sure, footprints)
        maybe = overlapping & ~covered[project]
        by_maybe = relevant & ~covered & self._covered(project, ks, maybe, footprints)
        # Covered only if an undecided feature qualifies: the first such feature's reason.
        undecided = np.flatnonzero(maybe & (missing != None) & by_maybe[project])  # noqa: E711
        for i in np.sort(undecided[distinct_rows(project[undecided])[0]]).tolist():
            self.note(int(project[i]), missing[i])
        rest = relevant & ~by_maybe
        project_missing = self.missing != None  # noqa: E711
        for p in np.flatnonzero(rest & project_missing & (covered == (not outside))).tolist():
            self.note(p, self.missing[p])
        decided = rest & ~project_missing
        if not outside:
            fire = sure & (decided & covered)[project]
            self.fire(project[fire], ks[fire])
            return
        lacking = decided & ~covered
        near = np.flatnonzero(holds & (pairs.distance_m[ks] <= self.rule.reach_m) & lacking[project])
        # The most overlapped, then the nearest, then the first: first in this order per project.
        order = near[np.lexsort((near, pairs.distance_m[ks[near]], -pairs.overlap_m2[ks[near]], project[near]))]
        best = order[distinct_rows(project[order])[0]] if len(order) else order
        # The lacking projects with no feature near: a mask, not np.setdiff1d (whose np.unique imports numpy.ma).
        alone = lacking.copy()
        alone[project[best]] = False
        alone = np.flatnonzero(alone)
        self.fire(np.concatenate([project[best], alone]), np.concatenate([ks[best], np.full(len(alone), -1)]))

    def _covered(self, project: np.ndarray, ks: np.ndarray, rows: np.ndarray, footprints: np.ndarray) -> np.ndarray:
        """Per project: whether the features of its pairs ``ks[rows]`` (a mask) together cover its footprint.

        A feature holding the whole footprint covers it; features whose
        overlaps do not even add up to the footprint's area do not; the
        others are tested against the union of the features.
        """
        n, pairs, areas = len(self.table), self.pairs, self.table.areas
        mine, k = project[rows], ks[rows]
        counted = np.bincount(mine, minlength=n) > 0
        covered = np.bincount(mine, weights=pairs.inside[k], minlength=n) > 0
        total = np.bincount(mine, weights=pairs.overlap_m2[k], minlength=n)
        # Sums that are clearly short need no geometry (the margin is far above any rounding of the sum).
        doubt = np.flatnonzero(counted & ~covered & (areas > 0) & (total >= (areas - OVERLAP_FLOOR_M2) * (1 - 1e-9)))
        if len(doubt):
            positions = _positions_by(mine)
            for p in doubt.tolist():
                covered[p] = self._union_covers(p, footprints[p], k[positions[p]])
        return covered

    def _union_covers(self, p: int, footprint, ks: np.ndarray) -> bool:
        """Whether the features of pairs ``ks`` (none holding the whole footprint) together cover the footprint."""
        area = self.table.areas[p]
        if self.pairs.overlap_m2[ks].sum() < area - OVERLAP_FLOOR_M2:
            return False  # even all together they do not reach the footprint's area
        union = shapely.union_all(self.layer.geometry[self.pairs.feature[ks]])
        return bool(area - shapely.area(shapely.intersection(footprint, union)) <= OVERLAP_FLOOR_M2)


def _positions_by(values: np.ndarray) -> dict[int, np.ndarray]:
    """The positions of each distinct value of an integer array, in order (a group-by's indices)."""
    order = np.argsort(values, kind="stable")
    starts = np.flatnonzero(np.diff(values[order], prepend=-1))  # values are positions: never -1
    return dict(zip(values[order[starts]].tolist(), np.split(order, starts[1:]), strict=True)) if len(values) else {}
