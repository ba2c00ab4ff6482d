"""``capacity``: each zone charged its area share of the project's loads.

A group-by over (project, zone): a zone stored as several features (the
same id) is charged as one; the outcomes are decided over (zone, pollutant)
arrays against the zone's ``remaining_<pollutant>``, ``attains`` and
``offset_ratio_<pollutant>`` attributes.
"""

from __future__ import annotations

import numpy as np

from threelines.engine.compile import Decided, distinct_rows
from threelines.engine.decisions.layer import OnLayer
from threelines.engine.decisions.rows import Charge, Fired
from threelines.engine.verdict import Unresolved
from threelines.layers.read import LayerData
from threelines.rules.decide import not_given
from threelines.rules.load import POLLUTANTS, offset_fields, remaining_fields


class Capacity(OnLayer):
    """A capacity rule against the pairs of its zone layer."""

    def decide(self, footprints: np.ndarray) -> tuple[Fired, list[tuple[int, Unresolved]]]:
        """The rows of the rule: a row per (zone, pollutant) charged that fires (``footprints`` are not read)."""
        return self.capacity() or self.fired_rows(), self.notes

    def capacity(self) -> Fired | None:
        """``capacity``: charge each zone its area share of the project's loads (a group-by over zones).

        A load beyond the zone's ``remaining_<pollutant>`` fires with the
        rule's outcome; a load that fits in a zone that does not attain its
        target (``attains`` is false) is conditional, with the offset it
        needs at the zone's ``offset_ratio_<pollutant>`` (or ``offset_ratio``).
        Returns the rows that fire, or None when no zone is charged.
        """
        rule, pairs, layer = self.rule, self.pairs, self.layer
        ks = np.flatnonzero(self.overlapping & self.relevant[pairs.project])
        if not len(ks):  # no zone to charge or to note
            return None
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
            return None
        ks, project, feature = ks[charged], project[charged], feature[charged]
        zone_code = zone_codes(layer)[feature]
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
        return Fired(p0[g], k, f0[g], overlap[g], share[g], pairs.distance_m[k], self.overlapping[k], charge=charge)

    def _loads_missing(self, project: np.ndarray) -> np.ndarray:
        """Per row: why its project's loads cannot all be charged (the pollutants it does not declare), or None."""
        names = [POLLUTANTS[x][0] for x in self.rule.pollutants]
        projects, inverse = np.unique(project, return_inverse=True)
        maps = self.table.contexts.take(projects)
        # Which of the names each project does not declare, as the bits of an integer.
        gaps = np.zeros(len(projects), dtype=np.int64)
        for bit, name in enumerate(names):
            gaps |= (~maps.given(name)).astype(np.int64) << bit
        gaps[self.table.quiet[projects]] = 0  # a road or a tower with no loads declared: nothing is missing
        kinds, which = np.unique(gaps, return_inverse=True)
        reasons = [
            not_given("project", [n for bit, n in enumerate(names) if kind >> bit & 1]) if kind else None
            for kind in kinds.tolist()
        ]
        return np.array([*reasons, None], dtype=object)[:-1][which][inverse]


def zone_codes(layer: LayerData) -> np.ndarray:
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
