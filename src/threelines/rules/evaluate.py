"""Apply rules to measured (project, feature) pairs and produce triggers.

For each rule: projects are first filtered by industry, kind and ``when``;
then the layer's measured pairs are filtered by the spatial test and the
``condition``. A rule that needs an attribute the project does not give is
reported as unresolved for that project, never silently passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from threelines import industry
from threelines.layers import LayerData
from threelines.measure import M2_PER_MU, Pairs
from threelines.rules.load import PROJECT_KEYS, Rule
from threelines.verdict import Trigger, Unresolved


def project_context(attrs: dict[str, Any], area_m2: float) -> dict[str, Any]:
    """The ``project`` map rules see: given attributes only, plus derived areas."""
    out = {k: v for k, v in attrs.items() if v is not None}
    if attrs.get("industry"):
        out["industry_name"] = industry.name(attrs["industry"]) or ""
    out.update(area_m2=float(area_m2), area_ha=float(area_m2) / 1e4, area_mu=float(area_m2) / M2_PER_MU)
    return out


def applies(rule: Rule, project: dict[str, Any]) -> tuple[bool, str | None]:
    """Decide whether a rule concerns a project, before any geometry.

    Returns
    -------
    (bool, str or None)
        Whether it applies, and why it could not be decided (or None).
    """
    if rule.industry or rule.industry_exclude:
        code = project.get("industry")
        if code is None:
            return False, "the project's industry code is not given"
        if rule.industry and not industry.matches(code, rule.industry):
            return False, None
        if industry.matches(code, rule.industry_exclude):
            return False, None
    if rule.kinds and project.get("kind") not in rule.kinds:
        return False, None
    if rule.when is not None:
        ok, why = _truth(rule.when, {"project": project}, project)
        return ok, why
    return True, None


def _truth(expr, variables: dict[str, Any], project: dict[str, Any]) -> tuple[bool, str | None]:
    """Evaluate a condition; a missing attribute makes it undecided, with the reason."""
    try:
        return bool(expr.evaluate(variables)), None
    except KeyError as exc:
        key = exc.args[0] if exc.args else "?"
        owner = "project attribute" if key in PROJECT_KEYS and key not in project else "feature attribute"
        return False, f"{owner} {key!r} is not given"
    except (TypeError, RuntimeError, ValueError) as exc:
        return False, f"cannot evaluate {expr.source!r}: {str(exc).splitlines()[0]}"


def evaluate_rule(
    rule: Rule,
    projects: list[dict[str, Any]],
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
    areas : numpy.ndarray
        Footprint areas in m2.
    layer : LayerData
        The rule's layer.
    pairs : Pairs
        The measured pairs of the projects against that layer.

    Returns
    -------
    (list of (int, Trigger), list of (int, Unresolved))
        Triggers and unresolved notes, each with the project's position.
    """
    triggers: list[tuple[int, Trigger]] = []
    unresolved: list[tuple[int, Unresolved]] = []
    applicable = np.zeros(len(projects), dtype=bool)
    undecided: dict[int, str] = {}
    for p, project in enumerate(projects):
        applicable[p], why = applies(rule, project)
        if why:
            undecided[p] = why
    if rule.test == "outside":
        unresolved += [(p, Unresolved(rule=rule.id, reason=why)) for p, why in undecided.items()]
        return _outside(rule, projects, areas, layer, pairs, applicable), unresolved
    if rule.test == "overlaps":
        spatial = np.where(areas[pairs.project] > 0, pairs.overlap_m2 > rule.min_overlap_m2, pairs.distance_m == 0)
    elif rule.test == "within_distance":
        spatial = pairs.distance_m <= rule.distance_m
    else:
        spatial = pairs.inside
    # An undecided project is reported only where the rule's spatial test and
    # condition hold (or cannot be decided either), once per rule.
    for k in np.flatnonzero(spatial & np.isin(pairs.project, list(undecided))):
        p = int(pairs.project[k])
        if p in undecided and _maybe(rule, projects[p], areas[p], layer, pairs, k):
            unresolved.append((p, Unresolved(rule=rule.id, reason=undecided.pop(p))))
    for k in np.flatnonzero(applicable[pairs.project] & spatial):
        p, f = int(pairs.project[k]), int(pairs.feature[k])
        variables = _pair_variables(projects[p], areas[p], layer, f, pairs, k)
        if rule.condition is not None:
            ok, why = _truth(rule.condition, variables, projects[p])
            if why:
                unresolved.append((p, Unresolved(rule=rule.id, reason=why, feature_id=layer.ids[f])))
            if not ok:
                continue
        triggers.append((p, _trigger(rule, layer, f, variables)))
    return triggers, unresolved


def _maybe(rule: Rule, project, area, layer: LayerData, pairs: Pairs, k: int) -> bool:
    """Tell whether a pair's condition holds or cannot be decided."""
    if rule.condition is None:
        return True
    ok, why = _truth(rule.condition, _pair_variables(project, area, layer, int(pairs.feature[k]), pairs, k), project)
    return ok or why is not None


def _outside(rule, projects, areas, layer, pairs, applicable) -> list[tuple[int, Trigger]]:
    """An ``outside`` rule fires when no qualifying feature contains the footprint.

    The evidence is the qualifying feature the footprint overlaps most, else
    the nearest one within the rule's reach, else none.
    """
    qualifies = np.ones(len(pairs.project), dtype=bool)
    if rule.condition is not None:
        for k in np.flatnonzero(applicable[pairs.project]):
            variables = _pair_variables(
                projects[pairs.project[k]], areas[pairs.project[k]], layer, pairs.feature[k], pairs, k
            )
            qualifies[k] = _truth(rule.condition, variables, projects[pairs.project[k]])[0]
    inside = set(pairs.project[qualifies & pairs.inside].tolist())
    candidates = np.flatnonzero(qualifies)
    order = candidates[
        np.lexsort((pairs.distance_m[candidates], -pairs.overlap_m2[candidates], pairs.project[candidates]))
    ]
    firsts, at = np.unique(pairs.project[order], return_index=True)
    best = dict(zip(firsts.tolist(), order[at].tolist(), strict=True))
    out = []
    for p in np.flatnonzero(applicable).tolist():
        if p in inside:
            continue
        if p in best:
            k = best[p]
            variables = _pair_variables(projects[p], areas[p], layer, int(pairs.feature[k]), pairs, k)
            out.append((p, _trigger(rule, layer, int(pairs.feature[k]), variables)))
        else:
            out.append((p, _trigger(rule, layer, None, {"project": projects[p], "feature": {}})))
    return out


def _pair_variables(project, area, layer: LayerData, f: int, pairs: Pairs, k: int) -> dict[str, Any]:
    """The names a condition or message sees for one pair."""
    overlap = float(pairs.overlap_m2[k])
    return {
        "project": project,
        "feature": layer.attributes[f],
        "overlap_m2": overlap,
        "overlap_ha": overlap / 1e4,
        "overlap_mu": overlap / M2_PER_MU,
        "overlap_ratio": min(overlap / area, 1.0) if area > 0 else (1.0 if pairs.inside[k] else 0.0),
        "distance_m": float(pairs.distance_m[k]),
    }


def _trigger(rule: Rule, layer: LayerData, f: int | None, variables: dict[str, Any]) -> Trigger:
    """Build the trigger for a rule that fired, rendering its message."""
    has_pair = f is not None
    return Trigger(
        rule=rule.id,
        title=rule.title,
        outcome=rule.outcome,
        dimension=rule.dimension,
        layer=rule.layer,
        feature_id=layer.ids[f] if has_pair else None,
        feature_name=layer.names[f] if has_pair else None,
        overlap_m2=variables["overlap_m2"] if has_pair else None,
        overlap_ha=variables["overlap_ha"] if has_pair else None,
        overlap_mu=variables["overlap_mu"] if has_pair else None,
        overlap_ratio=variables["overlap_ratio"] if has_pair else None,
        distance_m=variables["distance_m"] if has_pair else None,
        message=rule.message.render(variables),
        basis=rule.basis,
    )
