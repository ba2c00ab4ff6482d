"""Apply rules to measured (project, feature) pairs and produce triggers.

For each rule: projects are first filtered by kind, industry and ``when``;
then the layer's measured pairs are filtered by the spatial test and the
``condition``. A rule that needs an attribute the project (or a feature) does
not give is reported as unresolved for that project, never silently passed
and never silently fired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from threelines.engine.measure import M2_PER_MU, OVERLAP_FLOOR_M2, Pairs
from threelines.engine.verdict import Trigger, Unresolved
from threelines.layers.read import LayerData
from threelines.rules.decide import Decision, Failure, applies, decide_cached, declares_no_operation, not_given
from threelines.rules.expr import Expr
from threelines.rules.load import POLLUTANTS, Rule, offset_fields, remaining_fields
from threelines.rules.triggers import UNITS_ZH, build_trigger, charged, quantity, rule_texts


def evaluate_rule(
    rule: Rule,
    projects: list[dict[str, Any]],
    footprints: np.ndarray,
    areas: np.ndarray,
    layer: LayerData,
    pairs: Pairs,
) -> tuple[list[tuple[int, Trigger]], list[tuple[int, Unresolved]]]:
    """Apply one rule to every project.

    Parameters
    ----------
    rule : Rule
    projects : list of dict
        The ``project`` maps (see :func:`project_context`).
    footprints : numpy.ndarray of shapely geometries
        The footprints in the working CRS.
    areas : numpy.ndarray
        Footprint areas in m2.
    layer : LayerData
        The rule's layer.
    pairs : Pairs
        The measured pairs of the footprints against that layer.

    Returns
    -------
    (list of (int, Trigger), list of (int, Unresolved))
        Triggers and unresolved notes, each with the project's position.
    """
    context = _Context(rule, projects, areas, layer, pairs)
    if rule.test in ("inside", "outside"):
        return context.containment(footprints)
    if rule.test == "capacity":
        return context.capacity()
    if rule.test == "overlaps":
        spatial = context.overlapping & (pairs.overlap_m2 > rule.min_overlap_m2) | (
            (areas[pairs.project] == 0) & (pairs.distance_m == 0)
        )
    else:
        spatial = pairs.distance_m <= rule.distance_m
    return context.per_feature(spatial)


class _Context:
    """One rule against one layer: project decisions and pair conditions, computed once."""

    def __init__(self, rule: Rule, projects, areas, layer: LayerData, pairs: Pairs):
        self.rule, self.projects, self.areas, self.layer, self.pairs = rule, projects, areas, layer, pairs
        # Decisions and messages by the values their expressions read: most repeat across pairs.
        self._decided: dict = {}
        self._messages: dict = {}
        self.decisions = [applies(rule, p, self._decided) for p in projects]
        # Applies, or might apply if the missing information were given.
        self.relevant = np.array([d.holds or d.missing is not None for d in self.decisions], dtype=bool)
        self.decision_missing = np.array([d.missing for d in self.decisions], dtype=object)
        positive = areas[pairs.project] > 0
        self.overlapping = np.where(positive, pairs.overlap_m2 > OVERLAP_FLOOR_M2, pairs.distance_m == 0)
        # A point on the boundary of n features counts 1/n in each, as it does for control units.
        self.touches = np.bincount(pairs.project[self.overlapping & ~positive], minlength=len(projects))
        self.triggers: list[tuple[int, Trigger]] = []
        self.unresolved: list[tuple[int, Unresolved]] = []
        self._noted: set[int] = set()
        # Most conditions look at the feature alone (zone_type, is_park, class): decide those
        # once per feature, not once per pair.
        self._per_feature: dict[tuple[int, int], Decision] = {}

    def variables(self, k: int) -> dict[str, Any]:
        """The names a condition or message sees for pair ``k``."""
        p, f = int(self.pairs.project[k]), int(self.pairs.feature[k])
        overlap = float(self.pairs.overlap_m2[k])
        return {
            "project": self.projects[p],
            "feature": self.layer.attributes[f],
            "overlaps": bool(self.overlapping[k]),
            "overlap_m2": overlap,
            "overlap_ha": overlap / 1e4,
            "overlap_mu": overlap / M2_PER_MU,
            "overlap_ratio": self.ratio(k),
            "distance_m": float(self.pairs.distance_m[k]),
        }

    def ratio(self, k: int) -> float:
        """The share of the footprint that pair ``k`` covers (a point: 1/n of the features it touches)."""
        p = int(self.pairs.project[k])
        if self.areas[p] > 0:
            return min(float(self.pairs.overlap_m2[k]) / float(self.areas[p]), 1.0)
        return 1.0 / self.touches[p] if self.overlapping[k] else 0.0

    def condition(self, k: int) -> Decision:
        """The rule's condition for pair ``k`` (true when it has none)."""
        if self.rule.condition is None:
            return Decision(True)
        return self.feature_decision(self.rule.condition, k, slot=0)

    def feature_decision(self, expr: Expr, k: int, slot: int) -> Decision:
        """Decide ``expr`` for pair ``k``, once per feature when it reads nothing but the feature."""
        if _feature_only(expr):
            return self._feature_decision(expr, int(self.pairs.feature[k]), slot)
        return decide_cached(expr, self.variables(k), self._decided)

    def _feature_decision(self, expr: Expr, f: int, slot: int) -> Decision:
        key = (slot, f)
        if key not in self._per_feature:
            self._per_feature[key] = decide_cached(expr, {"feature": self.layer.attributes[f]}, self._decided)
        return self._per_feature[key]

    def pair_decisions(self, expr: Expr | None, ks: np.ndarray, slot: int) -> _Decisions:
        """Decide ``expr`` for the pairs ``ks`` (true when there is none), each feature once if it can."""
        if expr is None:
            return _Decisions(np.ones(len(ks), dtype=bool), np.full(len(ks), None, dtype=object))
        if _feature_only(expr):
            features, where = np.unique(self.pairs.feature[ks], return_inverse=True)
            decided = [self._feature_decision(expr, f, slot) for f in features.tolist()]
            where = where.ravel()
        else:
            decided, where = [self.feature_decision(expr, k, slot) for k in ks.tolist()], np.arange(len(ks))
        holds = np.array([d.holds for d in decided], dtype=bool)
        missing = np.array([d.missing for d in decided], dtype=object)
        return _Decisions(holds[where], missing[where])

    def project_missing(self, pollutants: tuple[str, ...]) -> np.ndarray:
        """Per project: why its loads cannot all be charged (the pollutants it does not declare), or None."""
        out = np.full(len(self.projects), None, dtype=object)
        for p, project in enumerate(self.projects):
            if declares_no_operation(project):
                continue  # a road or a tower with no loads declared: the rule cannot apply, nothing is missing
            missing = [POLLUTANTS[x][0] for x in pollutants if POLLUTANTS[x][0] not in project]
            out[p] = not_given("project", missing) if missing else None
        return out

    def project_totals(self, attribute: str) -> np.ndarray:
        """Per project: its declared quantity, 0 when not given."""
        return np.array([p.get(attribute) or 0.0 for p in self.projects], dtype=float)

    def zone_codes(self) -> np.ndarray:
        """Per feature: an integer standing for its id (features with the same id are one zone)."""
        return pd.factorize(pd.Series(self.layer.ids, dtype=object))[0]

    def ratios(self, ks: np.ndarray) -> np.ndarray:
        """:meth:`ratio` for the pairs ``ks``, over arrays."""
        p = self.pairs.project[ks]
        area, overlap = self.areas[p], self.pairs.overlap_m2[ks]
        with np.errstate(divide="ignore", invalid="ignore"):
            point = np.where(self.overlapping[ks], 1.0 / self.touches[p], 0.0)
            return np.where(area > 0, np.minimum(overlap / area, 1.0), point)

    def feature_numbers(self, names: tuple[str, ...], label: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Per feature: the first of the attributes ``names`` it has, as a number (NaN if none), and a note.

        The note says the attribute is not a number or not given; with
        ``label`` None only the layer's declared fields count, and a layer
        that declares none of them needs no value (no note).
        """
        if label is None:
            names = tuple(n for n in names if n in self.layer.spec.fields)
            if not names:
                return np.full(len(self.layer), np.nan), np.full(len(self.layer), None, dtype=object)
            label = names[0]
        values, notes = np.full(len(self.layer), np.nan), np.full(len(self.layer), None, dtype=object)
        for f, feature in enumerate(self.layer.attributes):
            value = next((feature[n] for n in names if n in feature), None)
            if isinstance(value, float):
                values[f] = value
            else:
                notes[f] = f"feature attribute {label!r} is {'not a number' if value else 'not given'}"
        return values, notes

    def message(self, variables: dict[str, Any]) -> dict[str, Any]:
        """The rule's ``message`` and ``translations`` for these variables (see :func:`_texts`)."""
        return rule_texts(self.rule, variables, self._messages)

    def note(self, p: int, reason: str, feature_id=None) -> None:
        """Record that the rule could not be decided for project ``p`` (once per project)."""
        if p not in self._noted:
            self._noted.add(p)
            failed = isinstance(reason, Failure)
            self.unresolved.append((p, Unresolved(self.rule.id, str(reason), feature_id, failed)))

    def fire(self, p: int, k: int | None) -> None:
        """Record a trigger for project ``p``, with pair ``k`` as evidence (or none)."""
        if k is None:
            variables = {"project": self.projects[p], "feature": {}}
            self.triggers.append((p, build_trigger(self.rule, self.layer, None, variables, self.message(variables))))
        else:
            variables = self.variables(k)
            f = int(self.pairs.feature[k])
            self.triggers.append((p, build_trigger(self.rule, self.layer, f, variables, self.message(variables))))

    def per_feature(self, spatial: np.ndarray):
        """``overlaps`` and ``within_distance``: one trigger per feature that meets the test."""
        for k in np.flatnonzero(spatial & self.relevant[self.pairs.project]).tolist():
            p = int(self.pairs.project[k])
            decision = self.decisions[p]
            pair = self.condition(k)
            if decision.holds and pair.holds:
                self.fire(p, k)
            elif decision.missing and (pair.holds or pair.missing):
                self.note(p, decision.missing)
            elif pair.missing and decision.holds:
                self.note(p, pair.missing, self.layer.ids[int(self.pairs.feature[k])])
        return self.triggers, self.unresolved

    def capacity(self):
        """``capacity``: charge each zone its area share of the project's loads.

        A load beyond the zone's ``remaining_<pollutant>`` fires with the
        rule's outcome; a load that fits in a zone that does not attain its
        target (``attains`` is false) is conditional, with the offset it
        needs at the zone's ``offset_ratio_<pollutant>`` (or ``offset_ratio``).
        Shares, loads and the comparisons are computed over arrays of the
        (project, zone) charges; Python runs only for what fires or is noted.
        """
        rule, pairs = self.rule, self.pairs
        ks = np.flatnonzero(self.overlapping & self.relevant[pairs.project])
        zone = self.pair_decisions(rule.condition, ks, slot=0)
        ks, zone = ks[zone.holds | zone.undecided], zone.take(zone.holds | zone.undecided)
        project, feature = pairs.project[ks], pairs.feature[ks]
        project_missing = self.project_missing(rule.pollutants)
        # The first reason per project, in pair order (a project is noted once per rule).
        decision_missing = self.decision_missing[project]
        reasons = np.where(zone.missing != None, zone.missing, project_missing[project])  # noqa: E711
        reasons = np.where(decision_missing != None, decision_missing, reasons)  # noqa: E711
        noted = np.flatnonzero(reasons != None)  # noqa: E711
        for i in np.sort(noted[np.unique(project[noted], return_index=True)[1]]).tolist():
            self.note(int(project[i]), reasons[i], self.layer.ids[int(feature[i])] if zone.missing[i] else None)
        # A zone stored as several features (same id) is charged as one; zones in order of first pair.
        charged = (self.decision_missing[project] == None) & (zone.missing == None)  # noqa: E711
        ks, project, feature = ks[charged], project[charged], feature[charged]
        zone_code = self.zone_codes()[feature]
        keys = project * (zone_code.max(initial=0) + 1) + zone_code
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        first, group = first[order], rank[inverse.ravel()]
        overlap = np.bincount(group, weights=pairs.overlap_m2[ks], minlength=len(first))
        share = np.minimum(np.bincount(group, weights=self.ratios(ks), minlength=len(first)), 1.0)
        k0, p0, f0 = ks[first], project[first], feature[first]
        attains = self.pair_decisions(rule.attains, k0, slot=1) if rule.attains is not None else None
        # Per (zone, pollutant): what happens, decided over arrays.
        events = []
        for j, pollutant in enumerate(rule.pollutants):
            total = self.project_totals(POLLUTANTS[pollutant][0])[p0]
            load = total * share
            remaining, remaining_note = self.feature_numbers(remaining_fields(pollutant), None)
            ratio_note = self.feature_numbers(offset_fields(pollutant), f"offset_ratio_{pollutant}")[1]
            given = total != 0
            bad_remaining = given & (remaining_note[f0] != None)  # noqa: E711
            live = given & ~bad_remaining
            exceeds = live & (load > remaining[f0])  # NaN (no remaining load kept) never exceeds
            rest = live & ~exceeds
            attains_missing = rest & (attains.missing != None) if attains else np.zeros_like(rest)  # noqa: E711
            offset = rest & ~attains_missing & (~attains.holds if attains else np.zeros_like(rest))
            bad_ratio = offset & (ratio_note[f0] != None)  # noqa: E711
            kind = np.zeros(len(first), dtype=np.int8)  # 0 nothing, then in the order of the checks
            kind[bad_remaining], kind[exceeds], kind[attains_missing] = 1, 2, 3
            kind[bad_ratio], kind[offset & ~bad_ratio] = 4, 5
            for g in np.flatnonzero(kind).tolist():
                left = None if np.isnan(remaining[f0[g]]) else float(remaining[f0[g]])
                events.append((g, j, int(kind[g]), pollutant, float(load[g]), float(total[g]), left))
        events.sort(key=lambda e: (e[0], e[1]))  # zone order, then the rule's pollutant order
        variables_of: dict[int, dict[str, Any]] = {}
        for g, _, kind, pollutant, load, total, left in events:
            p, f, fid = int(p0[g]), int(f0[g]), self.layer.ids[int(f0[g])]
            if kind == 1:
                self.note(p, remaining_note[f], fid)
            elif kind == 3:
                self.note(p, attains.missing[g], fid)
            elif kind == 4:
                self.note(p, ratio_note[f], fid)
            else:
                if g not in variables_of:
                    variables = self.variables(int(k0[g]))
                    variables.update(
                        overlap_m2=float(overlap[g]), overlap_ha=float(overlap[g]) / 1e4,
                        overlap_mu=float(overlap[g]) / M2_PER_MU, overlap_ratio=float(share[g]),
                    )  # fmt: skip
                    variables_of[g] = variables
                extra = {"pollutant": pollutant, "project_load": load, "remaining_load": left}
                self._charge(p, int(k0[g]), variables_of[g], extra, total, exceeds=kind == 2)
        return self.triggers, self.unresolved

    def _charge(self, p: int, k: int, variables, extra: dict[str, Any], total: float, exceeds: bool) -> None:
        """Fire one pollutant of project ``p`` charged to the zone of pair ``k``: over capacity, or an offset.

        ``extra`` holds the ``pollutant``, its ``project_load`` in the zone and the ``remaining_load``.
        """
        pollutant, load, remaining = extra["pollutant"], extra["project_load"], extra["remaining_load"]
        _, unit, label = POLLUTANTS[pollutant]
        feature, share = variables["feature"], variables["overlap_ratio"]
        zone = self.layer.names[int(self.pairs.feature[k])] or self.layer.ids[int(self.pairs.feature[k])]
        load_text = charged(label, load, total, share, unit)
        if exceeds:
            sentence = {
                "en": f"{load_text['en']} exceeds the remaining capacity of {quantity(remaining)} {unit} in {zone}",
                "zh": f"{load_text['zh']}，超过{zone}剩余容量{quantity(remaining)} {UNITS_ZH[unit]}",
            }
            self._fire_capacity(p, k, variables, {**extra, "exceeds": True}, self.rule.outcome, sentence)
        else:
            ratio = next(feature[f] for f in offset_fields(pollutant) if f in feature)
            offset = quantity(load * ratio)
            sentence = {
                "en": f"{load_text['en']}: offset {offset} {unit} ({quantity(ratio)}x) required in {zone}",
                "zh": f"{load_text['zh']}：须在{zone}内削减替代{offset} {UNITS_ZH[unit]}（{quantity(ratio)}倍）",
            }
            extra.update(offset_ratio=ratio, required_offset=load * ratio, exceeds=False)
            self._fire_capacity(p, k, variables, extra, "conditional", sentence)

    def _fire_capacity(self, p, k, variables, extra, outcome, sentence: dict[str, str]) -> None:
        """Record a capacity trigger: the charge sentence, then the rule's own message, per language."""
        names = {"offset_ratio": None, "required_offset": None, **variables, **extra}
        texts = self.message(names)
        fields = {name: names[name] for name in CAPACITY_FIELDS}
        joins = {"en": "; ", "zh": "；"}
        translations = {
            lang: {**text, "message": sentence[lang] + joins[lang] + text["message"]}
            for lang, text in (texts["translations"] or {}).items()
        } or None
        if translations:
            message = next(iter(translations.values()))["message"]
        else:
            message = sentence["en"] + (f"; {texts['message']}" if texts["message"] else "")
        texts = {"message": message, "translations": translations}
        trigger = build_trigger(
            self.rule, self.layer, int(self.pairs.feature[k]), names, texts, outcome=outcome, **fields
        )
        self.triggers.append((p, trigger))

    def containment(self, footprints: np.ndarray):
        """``inside`` and ``outside``: whether the footprint lies within the union of qualifying features.

        A footprint spread over two adjacent qualifying features (a park cut
        into two units) is inside their union. ``inside`` fires once per
        qualifying feature it overlaps; ``outside`` fires once, with the
        qualifying feature it overlaps most (else the nearest within reach)
        as evidence.
        """
        pairs = self.pairs
        candidates = np.flatnonzero(self.relevant[pairs.project]).tolist()
        state = {k: self.condition(k) for k in candidates if self.overlapping[k] or self.rule.test == "outside"}
        qualifying = {k for k, d in state.items() if d.holds}
        unsure = {k: d.missing for k, d in state.items() if d.missing}
        by_project: dict[int, list[int]] = {}
        for k in qualifying | set(unsure):
            by_project.setdefault(int(pairs.project[k]), []).append(k)
        for p in np.flatnonzero(self.relevant).tolist():
            mine = sorted(by_project.get(p, []))
            sure = [k for k in mine if k in qualifying and self.overlapping[k]]
            maybe = [k for k in mine if self.overlapping[k]]
            covered = self._covered(p, footprints[p], sure)
            decision = self.decisions[p]
            if not covered and self._covered(p, footprints[p], maybe):
                self.note(p, unsure[next(k for k in maybe if k in unsure)])
                continue
            if decision.missing:
                if covered == (self.rule.test == "inside"):
                    self.note(p, decision.missing)
                continue
            if self.rule.test == "inside" and covered:
                for k in sure:
                    self.fire(p, k)
            elif self.rule.test == "outside" and not covered:
                reach = [k for k in mine if k in qualifying and pairs.distance_m[k] <= self.rule.reach_m]
                best = min(reach, key=lambda k: (-pairs.overlap_m2[k], pairs.distance_m[k]), default=None)
                self.fire(p, best)
        return self.triggers, self.unresolved

    def _covered(self, p: int, footprint, ks: list[int]) -> bool:
        """Whether the features of pairs ``ks`` together cover the footprint."""
        if not ks:
            return False
        if self.pairs.inside[ks].any():
            return True
        area = self.areas[p]
        if area == 0 or self.pairs.overlap_m2[ks].sum() < area - OVERLAP_FLOOR_M2:
            return False  # even all together they do not reach the footprint's area
        union = shapely.union_all(self.layer.geometry[self.pairs.feature[ks]])
        return bool(area - shapely.area(shapely.intersection(footprint, union)) <= OVERLAP_FLOOR_M2)


@dataclass(frozen=True)
class _Decisions:
    """Decisions over pairs, as arrays: whether each holds, and why it is undecided (or None)."""

    holds: np.ndarray
    missing: np.ndarray

    @property
    def undecided(self) -> np.ndarray:
        return self.missing != None  # noqa: E711

    def take(self, mask: np.ndarray) -> _Decisions:
        return _Decisions(self.holds[mask], self.missing[mask])


def _feature_only(expr: Expr) -> bool:
    """Whether an expression reads nothing but the feature (decided once per feature)."""
    return set(expr.program.variables()) <= {"feature"}


#: The charge's names a capacity trigger carries.
CAPACITY_FIELDS = ("pollutant", "project_load", "remaining_load", "offset_ratio", "required_offset")


def evaluate_zonal(rule: Rule, projects: list[dict[str, Any]], stats) -> tuple[list, list]:
    """Apply a zonal rule: test each footprint's raster statistic with the rule's condition.

    Parameters
    ----------
    rule : Rule
        A ``zonal`` rule.
    projects : list of dict
        The ``project`` maps.
    stats : list of threelines.layers.zonal.Zonal
        The statistic over each footprint.

    Returns
    -------
    (list of (int, Trigger), list of (int, Unresolved))
    """
    triggers, unresolved = [], []
    decided, messages = {}, {}
    for p, (project, zonal) in enumerate(zip(projects, stats, strict=True)):
        decision = applies(rule, project, decided)
        if not (decision.holds or decision.missing):
            continue
        if np.isnan(zonal.value):
            if decision.holds:
                unresolved.append(
                    (p, Unresolved(rule=rule.id, reason=f"layer {rule.layer!r} has no data under the footprint"))
                )
            continue
        variables = {"project": project, "value": zonal.value, "cells": float(zonal.cells)}
        pair = decide_cached(rule.condition, variables, decided)
        if decision.missing and (pair.holds or pair.missing):
            unresolved.append((p, _unresolved(rule, decision.missing)))
        elif pair.missing and decision.holds:
            unresolved.append((p, _unresolved(rule, pair.missing)))
        elif decision.holds and pair.holds:
            texts = rule_texts(rule, variables, messages)
            trigger = build_trigger(rule, None, None, variables, texts, statistic=rule.stat, value=zonal.value)
            triggers.append((p, trigger))
    return triggers, unresolved


def _unresolved(rule: Rule, reason: str) -> Unresolved:
    """An unresolved note, marked failed when the reason is an evaluation failure."""
    return Unresolved(rule=rule.id, reason=str(reason), failed=isinstance(reason, Failure))
