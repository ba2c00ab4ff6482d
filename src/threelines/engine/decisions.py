"""Step 3 of the flow: what each rule decides for each project, as rows.

Per rule, over the pairs of its layer: the spatial test is a mask, the
``condition`` is decided once per distinct value of what it reads and
broadcast back (:func:`conditions`), and what fires or is left unresolved
becomes rows: the rule's :class:`Fired` table, a row per trigger held as
columns (the project, the pair that is its evidence, and for a capacity
charge the load and what it meets), and a note per project that cannot be
decided. ``inside`` and ``outside`` are decided over all projects at once
(the geometry of a union only where the overlaps could cover the
footprint); capacity is a group-by over (project, zone), its outcomes
decided over (zone, pollutant) arrays; the access list is decided per
distinct (industry standing, units) of the projects, and its rows keep the
units they cover.

Nothing here writes a text: messages are rendered for the fired rows only,
in :mod:`threelines.engine.triggers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import shapely

from threelines.engine.compile import CompiledRule, Decided, Plan, broadcast, distinct_rows, value_codes
from threelines.engine.measure import M2_PER_MU, OVERLAP_FLOOR_M2, Pairs
from threelines.engine.pairs import Measured
from threelines.engine.verdict import ClauseFinding, Requirement, Unresolved
from threelines.layers.read import LayerData
from threelines.rules.access_list import Clause
from threelines.rules.decide import Failure, decide_cached, industry_decision, not_given
from threelines.rules.expr import Expr
from threelines.rules.load import POLLUTANTS, offset_fields, remaining_fields


@dataclass(frozen=True)
class Charge:
    """A capacity rule's rows: the pollutant charged to the zone, the loads, and whether they exceed.

    ``remaining_load`` is NaN where the zone keeps none; ``offset_ratio`` is
    NaN where the load exceeds (no offset is asked for then).
    """

    pollutant: list[str]
    project_load: np.ndarray
    total: np.ndarray
    remaining_load: np.ndarray
    exceeds: np.ndarray
    offset_ratio: np.ndarray


@dataclass(frozen=True)
class Fired:
    """What one rule fired, as columns: a row per trigger, in the order of the project's triggers.

    ``p`` is the project; ``k`` the pair that is the evidence and ``f`` its
    feature (-1 for both: no feature); ``overlap_m2``, ``overlap_ratio``,
    ``distance_m`` and ``overlaps`` are the pair's (NaN and false without
    one; for a capacity row the zone's, its features summed). ``charge``
    holds a capacity rule's columns; ``value`` and ``cells`` a zonal rule's
    statistic and cell count per row (as measured).
    """

    p: np.ndarray
    k: np.ndarray
    f: np.ndarray
    overlap_m2: np.ndarray
    overlap_ratio: np.ndarray
    distance_m: np.ndarray
    overlaps: np.ndarray
    charge: Charge | None = None
    value: list[float] | None = None
    cells: list[float] | None = None

    def __len__(self) -> int:
        return len(self.p)


class ClauseFired(NamedTuple):
    """A 禁止 / 限制 clause that fired for project ``p``, with the units it covers (largest share first)."""

    p: int
    clause: Clause
    covered: tuple
    layer: str


@dataclass
class Decisions:
    """Rows: per rule (in file order) what fired and the unresolved notes; per project the access list's rows.

    ``contexts`` are the maps rules see, per project (for the messages of what fired).
    """

    contexts: list[dict[str, Any]] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)
    notes: list[list[tuple[int, Unresolved]]] = field(default_factory=list)
    clause_fired: list[ClauseFired] = field(default_factory=list)
    clause_rows: list[tuple] = field(default_factory=list)  # per project: (requirements, unresolved, table)


def decide_rules(plan: Plan, measured: Measured, footprints: np.ndarray) -> Decisions:
    """Decide every rule and every access-list clause for every project.

    Parameters
    ----------
    plan : Plan
    measured : Measured
    footprints : numpy.ndarray of shapely geometries
        In the working CRS (``inside`` and ``outside`` may need the union of features).

    Returns
    -------
    Decisions
    """
    out = Decisions(contexts=plan.table.contexts)
    overlaps: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # per layer: what its rules share
    for compiled in plan.rules:
        rule = compiled.rule
        if rule.test == "zonal":
            fired, notes = _zonal(plan, compiled, measured.zonal[(rule.layer, rule.stat, rule.classes)])
        else:
            pairs = measured.pairs[rule.layer]
            if rule.layer not in overlaps:
                overlaps[rule.layer] = _overlapping(plan.table.areas, pairs)
            on = _OnLayer(plan, compiled, measured.layers[rule.layer], pairs, overlaps[rule.layer])
            fired, notes = on.decide(footprints)
        out.fired.append(fired)
        out.notes.append(notes)
    if plan.unit_layer and plan.clauses:
        out.clause_fired, out.clause_rows = _clauses(plan, measured.units)
    return out


def _overlapping(areas: np.ndarray, pairs: Pairs) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: whether the footprint overlaps the feature; per project: how many features a point touches.

    A point on the boundary of n features counts 1/n in each, as it does for control units.
    """
    positive = areas[pairs.project] > 0
    overlapping = np.where(positive, pairs.overlap_m2 > OVERLAP_FLOOR_M2, pairs.distance_m == 0)
    return overlapping, np.bincount(pairs.project[overlapping & ~positive], minlength=len(areas))


class _OnLayer:
    """One rule against the pairs of its layer (``overlaps``: :func:`_overlapping` of them)."""

    def __init__(self, plan: Plan, compiled: CompiledRule, layer: LayerData, pairs: Pairs, overlaps: tuple):
        self.plan, self.rule, self.layer, self.pairs = plan, compiled.rule, layer, pairs
        self.table = plan.table
        self.holds, self.missing, self.relevant = compiled.holds, compiled.missing, compiled.relevant
        self.overlapping, self.touches = overlaps
        self.notes: list[tuple[int, Unresolved]] = []
        self._noted: set[int] = set()
        self._unresolved: dict[tuple, Unresolved] = {}
        self._fired: list[tuple[np.ndarray, np.ndarray]] = []  # (projects, pairs) that fired; pair -1: none
        self._charged: Fired | None = None

    def decide(self, footprints: np.ndarray) -> tuple[Fired, list[tuple[int, Unresolved]]]:
        """The rows of the rule: by its test."""
        rule, pairs = self.rule, self.pairs
        if rule.test in ("inside", "outside"):
            self.containment(footprints)
        elif rule.test == "capacity":
            self.capacity()
        else:
            if rule.test == "overlaps":
                point = (self.table.areas[pairs.project] == 0) & (pairs.distance_m == 0)
                spatial = self.overlapping & (pairs.overlap_m2 > rule.min_overlap_m2) | point
            else:
                spatial = pairs.distance_m <= rule.distance_m
            self.per_feature(spatial)
        return self._charged or self.fired_rows(), self.notes

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
                codes = _feature_codes(self.layer, reads)
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
        rows = zip(project[first].tolist(), reasons[first].tolist(), fids[first].tolist(), strict=True)
        note, seen, notes = self._note_of, self._noted, self.notes
        for p, reason, fid in rows:
            if p not in seen:
                seen.add(p)
                notes.append((p, note(reason, fid)))

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
        alone = np.setdiff1d(np.flatnonzero(lacking), project[best])
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

    def capacity(self) -> None:
        """``capacity``: charge each zone its area share of the project's loads (a group-by over zones).

        A load beyond the zone's ``remaining_<pollutant>`` fires with the
        rule's outcome; a load that fits in a zone that does not attain its
        target (``attains`` is false) is conditional, with the offset it
        needs at the zone's ``offset_ratio_<pollutant>`` (or ``offset_ratio``).
        """
        rule, pairs, layer = self.rule, self.pairs, self.layer
        ks = np.flatnonzero(self.overlapping & self.relevant[pairs.project])
        if not len(ks):  # no zone to charge or to note
            return
        zone = self.conditions(rule.condition, ks)
        live = zone.holds | (zone.missing != None)  # noqa: E711
        ks, zone = ks[live], Decided(zone.holds[live], zone.missing[live])
        project, feature = pairs.project[ks], pairs.feature[ks]
        # The first reason per project, in pair order (a project is noted once per rule).
        decision_missing = self.missing[project]
        reasons = np.where(decision_missing != None, decision_missing, zone.missing)  # noqa: E711
        loads = reasons == None  # noqa: E711  (no other reason comes first: the loads not declared)
        reasons[loads] = self._loads_missing(project[loads])
        fids = np.full(len(ks), None, dtype=object)
        for i in np.flatnonzero(zone.missing != None).tolist():  # noqa: E711
            fids[i] = layer.ids[int(feature[i])]
        self.notes_first(project, reasons, fids)
        # A zone stored as several features (same id) is charged as one; zones in order of first pair.
        # A project that declares none of the rule's loads has nothing to charge (and no zone of it counts).
        totals = [self.table.number(POLLUTANTS[pollutant][0]) for pollutant in rule.pollutants]
        loaded = np.logical_or.reduce([total[project] != 0 for total in totals])
        charged = (decision_missing == None) & (zone.missing == None) & loaded  # noqa: E711
        if not charged.any():
            return
        ks, project, feature = ks[charged], project[charged], feature[charged]
        zone_code = _zone_codes(layer)[feature]
        keys = project * (zone_code.max(initial=0) + 1) + zone_code
        first, inverse = distinct_rows(keys)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        first, group = first[order], rank[inverse]
        overlap = np.bincount(group, weights=pairs.overlap_m2[ks], minlength=len(first))
        share = np.minimum(np.bincount(group, weights=self.ratios(ks), minlength=len(first)), 1.0)
        k0, p0, f0 = ks[first], project[first], feature[first]
        attains = self.conditions(rule.attains, k0) if rule.attains is not None else None
        # Per (zone, pollutant), decided over arrays: what happens (0 nothing, then in the order of the checks).
        shape = (len(first), len(rule.pollutants))
        kinds, loads, charged_totals = np.zeros(shape, dtype=np.int8), np.empty(shape), np.empty(shape)
        lefts, ratios, reasons = np.empty(shape), np.empty(shape), np.full(shape, None, dtype=object)
        for j, pollutant in enumerate(rule.pollutants):
            total = totals[j][p0]
            load = total * share
            remaining, remaining_note = _feature_numbers(layer, remaining_fields(pollutant), None)
            ratio, ratio_note = _feature_numbers(layer, offset_fields(pollutant), f"offset_ratio_{pollutant}")
            given = total != 0
            bad_remaining = given & (remaining_note[f0] != None)  # noqa: E711
            live = given & ~bad_remaining
            exceeds = live & (load > remaining[f0])  # NaN (no remaining load kept) never exceeds
            rest = live & ~exceeds
            attains_missing = rest & (attains.missing != None) if attains else np.zeros_like(rest)  # noqa: E711
            offset = rest & ~attains_missing & (~attains.holds if attains else np.zeros_like(rest))
            bad_ratio = offset & (ratio_note[f0] != None)  # noqa: E711
            kind = kinds[:, j]
            kind[bad_remaining], kind[exceeds], kind[attains_missing] = 1, 2, 3
            kind[bad_ratio], kind[offset & ~bad_ratio] = 4, 5
            loads[:, j], charged_totals[:, j], lefts[:, j], ratios[:, j] = load, total, remaining[f0], ratio[f0]
            reasons[:, j] = np.where(bad_remaining, remaining_note[f0], np.where(bad_ratio, ratio_note[f0], None))
            if attains:
                reasons[attains_missing, j] = attains.missing[attains_missing]
        g, j = np.nonzero(kinds)  # zone order, then the rule's pollutant order
        kind = kinds[g, j]
        for e in np.flatnonzero((kind == 1) | (kind == 3) | (kind == 4)).tolist():
            self.note(int(p0[g[e]]), reasons[g[e], j[e]], layer.ids[int(f0[g[e]])])
        fires = (kind == 2) | (kind == 5)
        g, j, exceeds = g[fires], j[fires], kind[fires] == 2
        charge = Charge(
            pollutant=[rule.pollutants[x] for x in j.tolist()], project_load=loads[g, j], total=charged_totals[g, j],
            remaining_load=lefts[g, j], exceeds=exceeds, offset_ratio=np.where(exceeds, np.nan, ratios[g, j]),
        )  # fmt: skip
        k = k0[g]
        self._charged = Fired(
            p0[g], k, f0[g], overlap[g], share[g], pairs.distance_m[k], self.overlapping[k], charge=charge
        )

    def _loads_missing(self, project: np.ndarray) -> np.ndarray:
        """Per row: why its project's loads cannot all be charged (the pollutants it does not declare), or None."""
        names = [POLLUTANTS[x][0] for x in self.rule.pollutants]
        projects, inverse = np.unique(project, return_inverse=True)
        contexts = [self.table.contexts[p] for p in projects.tolist()]
        # Which of the names each project does not declare, as the bits of an integer.
        gaps = np.zeros(len(projects), dtype=np.int64)
        for bit, name in enumerate(names):
            gaps |= np.array([name not in c for c in contexts], dtype=np.int64) << bit
        gaps[self.table.quiet[projects]] = 0  # a road or a tower with no loads declared: nothing is missing
        kinds, which = np.unique(gaps, return_inverse=True)
        reasons = [
            not_given("project", [n for bit, n in enumerate(names) if kind >> bit & 1]) if kind else None
            for kind in kinds.tolist()
        ]
        return np.array([*reasons, None], dtype=object)[:-1][which][inverse]


def _positions_by(values: np.ndarray) -> dict[int, np.ndarray]:
    """The positions of each distinct value of an integer array, in order (a group-by's indices)."""
    order = np.argsort(values, kind="stable")
    starts = np.flatnonzero(np.diff(values[order], prepend=-1))  # values are positions: never -1
    return dict(zip(values[order[starts]].tolist(), np.split(order, starts[1:]), strict=True)) if len(values) else {}


def _zone_codes(layer: LayerData) -> np.ndarray:
    """Per feature: an integer per distinct id, in order of first appearance (made once per layer)."""
    key = ("zone codes",)
    if key not in layer.derived:
        seen: dict = {}
        layer.derived[key] = np.array([seen.setdefault(i, len(seen)) for i in layer.ids], dtype=np.intp)
    return layer.derived[key]


def _feature_numbers(layer: LayerData, names: tuple[str, ...], label: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: the first of the attributes ``names`` it has, as a number (NaN if none), and a note.

    The note says the attribute is not a number or not given; with ``label``
    None only the layer's declared fields count, and a layer that declares
    none of them needs no value (no note). Made once per layer and arguments.
    """
    key = ("numbers", names, label)
    if key not in layer.derived:
        layer.derived[key] = _read_feature_numbers(layer, names, label)
    return layer.derived[key]


def _read_feature_numbers(layer: LayerData, names: tuple[str, ...], label: str | None) -> tuple[np.ndarray, np.ndarray]:
    if label is None:
        names = tuple(n for n in names if n in layer.spec.fields)
        if not names:
            return np.full(len(layer), np.nan), np.full(len(layer), None, dtype=object)
        label = names[0]
    values, notes = np.full(len(layer), np.nan), np.full(len(layer), None, dtype=object)
    for f, feature in enumerate(layer.attributes):
        value = next((feature[n] for n in names if n in feature), None)
        if isinstance(value, float):
            values[f] = value
        else:
            notes[f] = f"feature attribute {label!r} is {'not a number' if value else 'not given'}"
    return values, notes


def _feature_codes(layer: LayerData, reads) -> np.ndarray | None:
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


def _zonal(plan: Plan, compiled: CompiledRule, stats) -> tuple[Fired, list[tuple[int, Unresolved]]]:
    """A zonal rule: each footprint's raster statistic tested by the rule's condition."""
    rule, table = compiled.rule, plan.table
    notes = []
    live = np.flatnonzero(compiled.relevant)
    found = [stats[p] for p in live.tolist()]
    no_data = np.isnan(np.array([s.value for s in found], dtype=float))
    for p in live[no_data & compiled.holds[live]].tolist():
        notes.append((p, Unresolved(rule=rule.id, reason=f"layer {rule.layer!r} has no data under the footprint")))
    live = live[~no_data]
    found = [s for s, none in zip(found, no_data.tolist(), strict=True) if not none]
    values, cells = [s.value for s in found], [float(s.cells) for s in found]
    pair = _rows_decided(rule.condition, table, live, values, cells)
    missing, holds = compiled.missing[live], compiled.holds[live]
    by_project = missing.astype(bool) & (pair.holds | pair.missing.astype(bool))
    by_pair = ~by_project & pair.missing.astype(bool) & holds
    for i in np.flatnonzero(by_project | by_pair).tolist():
        reason = missing[i] if by_project[i] else pair.missing[i]
        notes.append((int(live[i]), Unresolved(rule.id, str(reason), failed=isinstance(reason, Failure))))
    notes.sort(key=lambda n: n[0])
    fire = np.flatnonzero(~by_project & ~by_pair & holds & pair.holds)
    none = np.full(len(fire), -1, dtype=np.intp)
    nan = np.full(len(fire), np.nan)
    rows = Fired(live[fire], none, none, nan, nan, nan, np.zeros(len(fire), dtype=bool))
    picked = fire.tolist()
    return replace(rows, value=[values[i] for i in picked], cells=[cells[i] for i in picked]), notes


def _rows_decided(expr: Expr, table, live: np.ndarray, values: list[float], cells: list[float]) -> Decided:
    """A zonal condition per project ``live`` (its statistic and cells), once per distinct value of what it reads."""
    if not len(live):
        return Decided(np.zeros(0, dtype=bool), np.full(0, None, dtype=object))
    comparison = expr.comparison
    if comparison is not None and comparison[0] in ("value", "cells"):  # doubles: compared over the arrays
        name, compare, number = comparison
        column = np.array(values if name == "value" else cells, dtype=float)
        return Decided(compare(column, number), np.full(len(live), None, dtype=object))
    codes = table.codes(expr.reads)
    columns = [live if codes is None else codes[live]]
    columns += [
        value_codes(np.array(c, dtype=float)) for n, c in (("value", values), ("cells", cells)) if n in expr.reads.names
    ]
    first, inverse = distinct_rows(np.stack(columns, axis=1))
    decided = [
        decide_cached(expr, {"project": table.contexts[live[i]], "value": values[i], "cells": cells[i]})
        for i in first.tolist()
    ]
    return broadcast(decided, inverse)


def _clauses(plan: Plan, units: list[list]) -> tuple[list[ClauseFired], list[tuple]]:
    """The access list joined with the projects: by the units they lie in, then by industry prefix.

    Each distinct unit (code and class) gets the clauses whose scope covers it
    (:class:`_ClauseJoin`); each distinct industry code the clauses it falls
    under or cannot be told for (codes that stand alike share a standing). A
    project's rows are decided once per distinct (standing, units) and shared
    by the projects that have them, in this call and later ones (the join
    keeps up to :data:`ROWS_KEPT` of them: a province's chunks meet the same
    units and industries again and again).

    Returns
    -------
    (list of ClauseFired, list of tuple)
        The 禁止 / 限制 clauses that fire, with the units they cover; per
        project its (requirements, unresolved, clause table), which depend on
        the distinct key alone.
    """
    join = _clause_join(plan)
    fired: list[ClauseFired] = []
    rows: list[tuple] = []
    decided = join.decided
    if len(decided) >= ROWS_KEPT:  # a service meets new units and industries without end
        decided.clear()
    empty = ((), (), ())
    standings = [join.industry(code) for code in plan.table.industries.tolist()]
    for p, (shares, standing) in enumerate(zip(units, standings, strict=True)):
        if not shares:
            rows.append(empty)
            continue
        key = (standing, *[(u.code, u.class_) for u in shares])
        entry = decided.get(key)
        if entry is None:
            entry = decided[key] = join.rows(standing, key[1:])
        firing, rest = entry
        for clause, covered in firing:
            fired.append(ClauseFired(p, clause, tuple([shares[i] for i in covered]), plan.unit_layer))
        rows.append(rest)
    return fired, rows


#: How many (industry standing, units) rows a clause join keeps between calls (a few kB each at most).
ROWS_KEPT = 20_000

#: The clause joins kept, by the identity of the clauses and the jurisdiction's level (see :func:`_clause_join`).
_JOINS: dict[tuple[int, str], _ClauseJoin] = {}

#: How many clause joins :func:`_clause_join` keeps.
_JOINS_KEPT = 8


def forget_joins() -> None:
    """Forget the clause joins and the access-list rows they keep (for timing the first evaluation of new projects)."""
    _JOINS.clear()


def _clause_join(plan: Plan) -> _ClauseJoin:
    """The clause join of a plan's access list, kept between calls: what it learns depends on the list alone."""
    key = (id(plan.clauses), plan.whole_level)
    join = _JOINS.get(key)
    if join is None or join.clauses is not plan.clauses:
        if len(_JOINS) >= _JOINS_KEPT:  # a process that loads many rule sets (tests) keeps only the latest
            _JOINS.clear()
        join = _JOINS[key] = _ClauseJoin(plan.clauses, plan.clause_index, plan.whole_level)
    return join


class _ClauseJoin:
    """The clause table, looked up by unit and by industry; the rows it gives are made once and shared."""

    def __init__(self, clauses: tuple[Clause, ...], index: dict[str, list[tuple[int, Clause]]], whole_level: str):
        self.clauses, self.index, self.whole_level = clauses, index, whole_level
        self._by_unit: dict[tuple[str, str], frozenset[int]] = {}
        self._by_industry: dict[str | None, int] = {}
        self._standings: dict[tuple, int] = {}  # each distinct standing: its position in _concerned
        self._concerned: list[tuple[dict[int, str | None], frozenset[int]]] = []
        self._entries: dict[tuple, tuple] = {}
        self.decided: dict[tuple, tuple] = {}  # rows by (standing, units), kept between calls: see _clauses

    def covering(self, unit: tuple[str, str]) -> frozenset[int]:
        """The positions of the clauses whose scope covers a unit (code, class)."""
        found = self._by_unit.get(unit)
        if found is None:
            code, cls = unit
            candidates = {i for key in ("*", cls, code) for i, _ in self.index.get(key, ())}
            found = self._by_unit[unit] = frozenset(i for i in candidates if self.clauses[i].covers(code, cls))
        return found

    def industry(self, code: str | None) -> int:
        """How an industry code stands to the clauses, as a number: codes that stand alike share it.

        A code stands to each clause as falling under it, or as not told
        (with the reason); the other clauses do not concern it (see
        :func:`industry_decision`). Many codes stand alike (those no clause
        names), and their projects share their rows.
        """
        found = self._by_industry.get(code)
        if found is None:
            decisions = [industry_decision(code, c.industry, c.exclude) for c in self.clauses]
            concerned = {i: d.missing for i, d in enumerate(decisions) if d.holds or d.missing}
            standing = tuple(concerned.items())
            found = self._standings.get(standing)
            if found is None:
                found = self._standings[standing] = len(self._concerned)
                self._concerned.append((concerned, frozenset(concerned)))
            self._by_industry[code] = found
        return found

    def rows(self, standing: int, units: tuple[tuple[str, str], ...]) -> tuple:
        """For an industry's standing (:meth:`industry`) in some units (largest share first).

        Returns what fires, and (the requirements, the unresolved notes, the clause table).
        """
        covering = [self.covering(u) for u in units]
        reasons, concerned = self._concerned[standing]
        firing, requirements, unresolved, table = [], [], [], []
        for i in sorted(concerned & frozenset().union(*covering)):
            covered = [j for j, found in enumerate(covering) if i in found] if len(covering) > 1 else [0]
            row, note, requirement = self.entry(i, units[covered[0]][0], reasons[i])
            table.append(row)
            if note is not None:
                unresolved.append(note)
            elif requirement is not None:
                requirements.append(requirement)
            else:
                firing.append((self.clauses[i], covered))
        return firing, (tuple(requirements), tuple(unresolved), tuple(table))

    def entry(self, i: int, first: str, missing: str | None) -> tuple:
        """Clause ``i`` for a project whose first covered unit is ``first``: its table row, and its note or requirement.

        Neither, for a 禁止 / 限制 clause that fires. Made once and shared by
        the projects it is the same for.
        """
        key = (i, first, missing)
        found = self._entries.get(key)
        if found is None:
            clause = self.clauses[i]
            finding = "review" if clause.outcome == "review" or missing else clause.outcome
            level = clause.level or self.whole_level
            row = ClauseFinding(
                id=clause.id, level=level, unit=first if level == "unit" else None, dimension=clause.dimension,
                text=clause.text, basis=clause.basis, finding=finding, source=clause.source, matched=clause.matched,
                reason=missing or (clause.reason or "to be reviewed" if finding == "review" else None),
            )  # fmt: skip
            note = requirement = None
            if missing:
                note = Unresolved(rule=clause.id, reason=missing)
            elif clause.outcome == "review":
                note = Unresolved(clause.id, f"access-list clause for review: {row.reason}")
            elif clause.outcome == "requirement":
                unit = first if clause.names_a_unit else clause.scope
                requirement = Requirement(clause.id, unit, clause.dimension, clause.text, clause.basis)
            found = self._entries[key] = (row, note, requirement)
        return found
