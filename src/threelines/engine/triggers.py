"""Step 4 of the flow: the fired rows become triggers, their texts made by :mod:`~threelines.engine.trigger_texts`.

The rows a rule fired (or an access-list clause) are kept together: the
rule's fixed fields once, the rows' columns (:class:`FiredTriggers`). A
trigger object is made per row only when a verdict's triggers are first
read; a batch writes its records from the rows. Only what fired gets a text,
and only when it is read, a language at a time (see
:mod:`threelines.engine.trigger_texts`).
"""

from __future__ import annotations

from itertools import pairwise, repeat

import numpy as np

from threelines.engine.decisions import ClauseFired, Decisions, Fired
from threelines.engine.measure import M2_PER_MU
from threelines.engine.pairs import Measured
from threelines.engine.records import TriggerRows
from threelines.engine.trigger_texts import ClauseTexts, RuleTexts
from threelines.engine.verdict import FiredRow, Trigger
from threelines.layers.read import LayerData
from threelines.rules.load import Rule


def build_triggers(rules: list[Rule], measured: Measured, decisions: Decisions, n: int) -> FiredTriggers:
    """The rows that fired as triggers, per project (``n`` of them) the rules' in file order, then the access list's.

    Parameters
    ----------
    rules : list of Rule
        In file order, as ``decisions.fired`` holds their rows.
    measured : Measured
        The layers, for the evidence features' ids and names.
    decisions : Decisions
    n : int
        The number of projects.

    Returns
    -------
    FiredTriggers
        The rows, each project's :class:`~threelines.engine.verdict.Trigger` objects made when first read.
    """
    parts, seen = [], 0
    for rule, fired in zip(rules, decisions.fired, strict=True):
        if len(fired):
            rows = _rule_rows(rule, measured.layers.get(rule.layer), fired, decisions.contexts)
            parts.append((fired.p, np.arange(seen, seen + len(fired)), rows))
            seen += len(fired)
    for p, positions, rows in _clause_rows(decisions.clause_fired):
        parts.append((p, positions + seen, rows))
    return FiredTriggers(parts, n)


class FiredTriggers:
    """The triggers of a screening's projects, held as the rows that fired, made into objects when first read.

    A batch writes each trigger's JSON record straight from the rows (see
    :func:`~threelines.engine.chunk_records.batch_results`): an object per
    row would be made for nothing. A verdict's triggers
    (:attr:`~threelines.engine.verdict.Verdict.triggers`) are made on the
    first read of any of them, for all the projects at once.

    Parameters
    ----------
    parts : list of (numpy.ndarray, numpy.ndarray, TriggerRows)
        Rows made together (a rule's, a clause's): each row's project, its
        place among its project's triggers (a number that orders them), and
        the rows.
    n : int
        The number of projects.
    """

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray, TriggerRows]], n: int):
        self.parts, self.n = parts, n
        self._rows: list[list[FiredRow]] | None = None
        self._made: list[list[Trigger]] | None = None

    def rows(self) -> list[list[FiredRow]]:
        """Per project: its triggers as the rows that make them (and their rules and outcomes), in order."""
        if self._rows is None:
            flat = []
            for _, _, rows in self.parts:
                made = zip(repeat(rows), range(len(rows)))
                flat.extend(map(FiredRow, made, rows.field("rule"), rows.field("outcome")))
            self._rows = self._per_project(flat)
        return self._rows

    def triggers(self) -> list[list[Trigger]]:
        """Per project: its triggers, made now (all the projects') if not yet."""
        # Unlocked: two of the service's threads reading the verdicts of one pass may both make them, equal
        # triggers either way (a list is assigned whole); only the work is done twice.
        if self._made is None:
            self._made = self._per_project([trigger for _, _, rows in self.parts for trigger in rows.triggers()])
        return self._made

    def order(self) -> tuple[np.ndarray, list[int]]:
        """The rows, taken a part after another, in their projects' order (by project, then by position).

        Returns the rows' places in that order, and where each project's
        rows start and end in it (``n + 1`` bounds).
        """
        if not self.parts:
            return np.zeros(0, dtype=np.int64), [0] * (self.n + 1)
        p = np.concatenate([part[0] for part in self.parts])
        order = np.lexsort((np.concatenate([part[1] for part in self.parts]), p))
        return order, np.concatenate([[0], np.cumsum(np.bincount(p, minlength=self.n))]).tolist()

    def _per_project(self, flat: list) -> list[list]:
        """Values given a row at a time, in the order of the parts, grouped per project in their order."""
        order, bounds = self.order()
        ordered = list(map(flat.__getitem__, order.tolist()))
        return [ordered[start:end] for start, end in pairwise(bounds)]


def _rule_rows(rule: Rule, layer: LayerData | None, fired: Fired, contexts: list[dict]) -> TriggerRows:
    """The rows a rule fired, as triggers to be; the rule's fields are the same in all."""
    texts = RuleTexts(rule, layer, fired, contexts)
    same = {"rule": rule.id, "title": rule.title, "outcome": rule.outcome, "dimension": rule.dimension,
            "layer": rule.layer, "basis": rule.basis}  # fmt: skip
    if rule.test == "zonal":
        same["statistic"] = rule.stat
        columns = {"value": list(fired.value)}
    elif fired.charge is not None:
        columns = _capacity_columns(rule, layer, fired, texts)
    else:
        columns = _pair_columns(layer, fired)
    return TriggerRows(same, columns, texts)


def _pair_columns(layer: LayerData, fired: Fired) -> dict[str, list]:
    """The evidence of each row: its feature and the pair's measures (None for all where no feature is)."""
    m2, f = fired.overlap_m2, fired.f.tolist()
    columns = {
        "feature_id": [layer.ids[i] if i >= 0 else None for i in f],
        "feature_name": [layer.names[i] if i >= 0 else None for i in f],
        "overlap_m2": m2.tolist(), "overlap_ha": (m2 / 1e4).tolist(), "overlap_mu": (m2 / M2_PER_MU).tolist(),
        "overlap_ratio": fired.overlap_ratio.tolist(), "distance_m": fired.distance_m.tolist(),
    }  # fmt: skip
    for i in np.flatnonzero(fired.f < 0).tolist():  # no feature is the evidence (a layer read near may have none)
        for name in _PAIR_MEASURES:
            columns[name][i] = None
    return columns


#: The measures of a pair a trigger carries.
_PAIR_MEASURES = ("overlap_m2", "overlap_ha", "overlap_mu", "overlap_ratio", "distance_m")


def _capacity_columns(rule: Rule, layer: LayerData, fired: Fired, texts: RuleTexts) -> dict[str, list]:
    """A capacity rule's rows: a pollutant charged to a zone, over its remaining capacity or with an offset.

    A load that exceeds takes the rule's outcome; one that fits with an
    offset required is conditional.
    """
    columns = _pair_columns(layer, fired)
    offset_ratio = texts.column("offset_ratio")
    columns.update(
        outcome=[rule.outcome if ratio is None else "conditional" for ratio in offset_ratio],
        pollutant=fired.charge.pollutant, project_load=fired.charge.project_load.tolist(),
        remaining_load=texts.column("remaining_load"), offset_ratio=offset_ratio,
        required_offset=texts.column("required_offset"),
    )  # fmt: skip
    return columns


def _clause_rows(fired: ClauseFired) -> list[tuple[np.ndarray, np.ndarray, TriggerRows]]:
    """The 禁止 / 限制 clauses that fired, as rows: a clause's rows made together (its fields alike in all).

    Each row's evidence is the covered unit of the largest share; the overlap
    is the footprint's area in all the units the clause covers.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray, TriggerRows)
        Per clause (in order of first row): its rows' projects, their positions in ``fired``, and the rows.
    """
    if not len(fired):
        return []
    units, width = fired.units, fired.width
    starts = np.cumsum(width) - width
    # Summed over the units each row covers, one after another from 0.0 in their order (np.bincount adds each
    # bin's weights in turn: the same floats as Python 3.11's sum, on any Python; 3.12's sum compensates).
    row_of = np.repeat(np.arange(len(fired)), width)
    overlap = np.bincount(row_of, weights=[u.overlap_m2 for u in units], minlength=len(fired))
    ratio = np.minimum(np.bincount(row_of, weights=[u.share for u in units], minlength=len(fired)), 1.0)
    codes = [u.code for u in units]
    covered = [tuple(codes[start : start + k]) for start, k in zip(starts.tolist(), width.tolist(), strict=True)]
    main = [units[start] for start in starts.tolist()]  # a row's evidence: its unit of the largest share
    # The rows of each clause, in order; the clauses in order of their first row.
    numbers: dict[int, int] = {}
    clause_of = np.fromiter((numbers.setdefault(id(c), len(numbers)) for c in fired.clause), np.intp, len(fired))
    order = np.argsort(clause_of, kind="stable")
    out = []
    for positions in np.split(order, np.cumsum(np.bincount(clause_of))[:-1].tolist()):
        clause, m2 = fired.clause[positions[0]], overlap[positions]
        mains = [main[i] for i in positions.tolist()]
        same = {"rule": clause.id, "title": f"准入清单 / access list ({clause.dimension})", "outcome": clause.outcome,
                "dimension": clause.dimension, "layer": fired.layer, "basis": clause.basis}  # fmt: skip
        columns = {
            "feature_id": [u.code for u in mains], "feature_name": [u.name for u in mains], "overlap_m2": m2.tolist(),
            "overlap_ha": (m2 / 1e4).tolist(), "overlap_mu": (m2 / M2_PER_MU).tolist(),
            "overlap_ratio": ratio[positions].tolist(), "distance_m": [0.0] * len(positions),
        }  # fmt: skip
        texts = ClauseTexts(clause, list(map(covered.__getitem__, positions.tolist())))
        out.append((fired.p[positions], positions, TriggerRows(same, columns, texts)))
    return out
