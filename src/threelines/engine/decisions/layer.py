"""What the rules on a layer share: the pair columns their conditions read, their notes and their rows.

:class:`OnLayer` holds one rule against the pairs of its layer. The spatial
rules (:mod:`.spatial`) and capacity (:mod:`.capacity`) build on it: a
condition is decided once per distinct value of what it reads
(:meth:`OnLayer.conditions`) and broadcast back to the pairs; a project the
rule cannot decide is noted once; what fires is kept as (project, pair) rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from threelines.engine.compile import CompiledRule, Decided, Plan, broadcast, distinct_rows, value_codes
from threelines.engine.decisions.rows import Fired
from threelines.engine.measure import M2_PER_MU, OVERLAP_FLOOR_M2, Pairs
from threelines.engine.verdict import Unresolved
from threelines.layers.read import LayerData
from threelines.rules.decide import Failure, decide_cached
from threelines.rules.expr import Expr


def overlapping(areas: np.ndarray, pairs: Pairs) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: whether the footprint overlaps the feature; per project: how many features a point touches.

    A point on the boundary of n features counts 1/n in each, as it does for control units.
    """
    positive = areas[pairs.project] > 0
    overlapping = np.where(positive, pairs.overlap_m2 > OVERLAP_FLOOR_M2, pairs.distance_m == 0)
    return overlapping, np.bincount(pairs.project[overlapping & ~positive], minlength=len(areas))


class OnLayer:
    """One rule against the pairs of its layer (``overlaps``: :func:`overlapping` of them)."""

    def __init__(self, plan: Plan, compiled: CompiledRule, layer: LayerData, pairs: Pairs, overlaps: tuple):
        self.plan, self.rule, self.layer, self.pairs = plan, compiled.rule, layer, pairs
        self.table = plan.table
        self.holds, self.missing, self.relevant = compiled.holds, compiled.missing, compiled.relevant
        self.overlapping, self.touches = overlaps
        self.notes: list[tuple[int, Unresolved]] = []
        self._noted: set[int] = set()
        self._unresolved: dict[tuple, Unresolved] = {}
        self._fired: list[tuple[np.ndarray, np.ndarray]] = []  # (projects, pairs) that fired; pair -1: none

    # --- columns the conditions read -------------------------------------------------------------

    def ratios(self, ks: np.ndarray) -> np.ndarray:
        """Per pair: the share of the footprint it covers (a point: 1/n of the features it touches)."""
        p = self.pairs.project[ks]
        area, overlap = self.table.areas[p], self.pairs.overlap_m2[ks]
        with np.errstate(divide="ignore", invalid="ignore"):
            point = np.where(self.overlapping[ks], 1.0 / self.touches[p], 0.0)
            return np.where(area > 0, np.minimum(overlap / area, 1.0), point)

    def _ratio(self, p: int, k: int) -> float:
        """:meth:`ratios` for one pair, without arrays."""
        area = float(self.table.areas[p])
        if area > 0:
            return min(float(self.pairs.overlap_m2[k]) / area, 1.0)
        return float(1.0 / self.touches[p]) if self.overlapping[k] else 0.0

    def column(self, name: str, ks: np.ndarray) -> np.ndarray:
        """A pair measure a condition or message may read, for the pairs ``ks``."""
        overlap = self.pairs.overlap_m2[ks]
        return {
            "overlaps": lambda: self.overlapping[ks],
            "overlap_m2": lambda: overlap,
            "overlap_ha": lambda: overlap / 1e4,
            "overlap_mu": lambda: overlap / M2_PER_MU,
            "overlap_ratio": lambda: self.ratios(ks),
            "distance_m": lambda: self.pairs.distance_m[ks],
        }[name]()

    def variables(self, k: int, ratio: float | None = None) -> dict[str, Any]:
        """The names a condition or message sees for pair ``k`` (``ratio``: its overlap ratio, when known)."""
        p, f = int(self.pairs.project[k]), int(self.pairs.feature[k])
        overlap = float(self.pairs.overlap_m2[k])
        return {
            "project": self.table.contexts[p],
            "feature": self.layer.attributes[f],
            "overlaps": bool(self.overlapping[k]),
            "overlap_m2": overlap,
            "overlap_ha": overlap / 1e4,
            "overlap_mu": overlap / M2_PER_MU,
            "overlap_ratio": self._ratio(p, k) if ratio is None else ratio,
            "distance_m": float(self.pairs.distance_m[k]),
        }

    def conditions(self, expr: Expr | None, ks: np.ndarray) -> Decided:
        """Decide ``expr`` for the pairs ``ks`` (true when there is none), once per distinct value it reads."""
        if expr is None:
            return Decided(np.ones(len(ks), dtype=bool), np.full(len(ks), None, dtype=object))
        reads = expr.reads
        parts = []
        for name in reads.names:
            if name == "project":
                codes = self.table.codes(reads)
                parts.append(self.pairs.project[ks] if codes is None else codes[self.pairs.project[ks]])
            elif name == "feature":
                codes = feature_codes(self.layer, reads)
                parts.append(self.pairs.feature[ks] if codes is None else codes[self.pairs.feature[ks]])
            else:
                parts.append(value_codes(self.column(name, ks)))
        if not parts or not len(ks):
            inverse, first = np.zeros(len(ks), dtype=np.intp), np.zeros(min(len(ks), 1), dtype=np.intp)
        else:
            first, inverse = distinct_rows(np.stack(parts, axis=1))
        decided = [decide_cached(expr, self.variables(int(ks[i]))) for i in first.tolist()]
        return broadcast(decided, inverse)

    # --- rows ------------------------------------------------------------------------------------
    def note(self, p: int, reason: str, feature_id=None) -> None:
        """Record that the rule could not be decided for project ``p`` (once per project)."""
        if p not in self._noted:
            self._noted.add(p)
            self.notes.append((p, self._note_of(reason, feature_id)))

    def _note_of(self, reason: str, feature_id) -> Unresolved:
        """The note for a reason and feature: one, shared by the projects it stands for (it is never changed)."""
        key = (reason, reason.__class__, feature_id)  # a Failure is not the same note as its text
        note = self._unresolved.get(key)
        if note is None:
            note = self._unresolved[key] = Unresolved(
                self.rule.id, str(reason), feature_id, isinstance(reason, Failure)
            )
        return note

    def notes_first(self, project: np.ndarray, reasons: np.ndarray, fids: np.ndarray) -> None:
        """Note, per project, the first of its rows with a reason (rows in pair order)."""
        noted = np.flatnonzero(reasons != None)  # noqa: E711
        first = np.sort(noted[distinct_rows(project[noted])[0]])
        texts = reasons[first].tolist()  # a Failure is not the same note as its text: keyed by type too
        ps, keys = project[first].tolist(), list(zip(texts, map(type, texts), fids[first].tolist(), strict=True))
        if self._noted:  # a project noted before keeps its note
            kept = [i for i, p in enumerate(ps) if p not in self._noted]
            ps, keys = [ps[i] for i in kept], [keys[i] for i in kept]
        made = {key: self._note_of(key[0], key[2]) for key in set(keys)}  # one per distinct reason and feature
        self._noted.update(ps)
        self.notes.extend(zip(ps, map(made.__getitem__, keys), strict=True))

    def fire(self, project: np.ndarray, ks: np.ndarray) -> None:
        """Rows for the pairs ``ks`` that fired (-1: a row with no feature)."""
        self._fired.append((project, ks))

    def fired_rows(self) -> Fired:
        """The rows fired, as columns (the pair's measures where there is a pair)."""
        pairs = self.pairs
        if self._fired:
            project, ks = (np.concatenate(column) for column in zip(*self._fired, strict=True))
        else:
            project, ks = np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        has = ks >= 0
        if has.all():
            return Fired(
                project, ks, pairs.feature[ks], pairs.overlap_m2[ks], self.ratios(ks), pairs.distance_m[ks],
                self.overlapping[ks],
            )  # fmt: skip
        f = np.full(len(ks), -1, dtype=np.intp)
        overlap, ratio, distance = (np.full(len(ks), np.nan) for _ in range(3))
        overlaps = np.zeros(len(ks), dtype=bool)
        some = ks[has]
        f[has], overlap[has], ratio[has] = pairs.feature[some], pairs.overlap_m2[some], self.ratios(some)
        distance[has], overlaps[has] = pairs.distance_m[some], self.overlapping[some]
        return Fired(project, ks, f, overlap, ratio, distance, overlaps)


def feature_codes(layer: LayerData, reads) -> np.ndarray | None:
    """Per feature: an integer standing for the values of the ``feature`` map that ``reads`` reads.

    Made once per layer and ``reads`` (kept with them, so that their id stays theirs).
    """
    key = ("codes", id(reads))
    kept = layer.derived.get(key)
    if kept is None or kept[0] is not reads:
        kept = layer.derived[key] = (reads, _read_feature_codes(layer, reads))
    return kept[1]


def _read_feature_codes(layer: LayerData, reads) -> np.ndarray | None:
    seen: dict = {}
    out = np.empty(len(layer), dtype=np.intp)
    for f, attributes in enumerate(layer.attributes):
        key = reads.key({"feature": attributes})
        if key is None:
            return None
        out[f] = seen.setdefault(key, len(seen))
    return out
