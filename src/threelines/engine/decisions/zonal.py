"""``zonal``: each footprint's raster statistic (mean, max, share of classes) tested by the rule's condition."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from threelines.engine.compile import CompiledRule, Decided, Plan, broadcast, distinct_rows, value_codes
from threelines.engine.decisions.rows import Fired
from threelines.engine.verdict import Unresolved
from threelines.rules.decide import Failure, decide_cached
from threelines.rules.expr import Expr


def zonal(plan: Plan, compiled: CompiledRule, stats) -> tuple[Fired, list[tuple[int, Unresolved]]]:
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
