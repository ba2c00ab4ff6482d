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
    """A zonal rule: each footprint's raster statistic tested by the rule's condition.

    ``stats`` is every footprint's statistic and count of cells, as two columns.
    """
    rule, table = compiled.rule, plan.table
    live = np.flatnonzero(compiled.relevant)
    value, cells = stats[0][live], stats[1][live].astype(float)
    no_data = np.isnan(value)
    ps = [live[no_data & compiled.holds[live]]]
    reasons: list = [np.full(len(ps[0]), f"layer {rule.layer!r} has no data under the footprint", dtype=object)]
    live, value, cells = live[~no_data], value[~no_data], cells[~no_data]
    pair = _rows_decided(rule.condition, table, live, value, cells)
    missing, holds = compiled.missing[live], compiled.holds[live]
    by_project = missing.astype(bool) & (pair.holds | pair.missing.astype(bool))
    by_pair = ~by_project & pair.missing.astype(bool) & holds
    noted = np.flatnonzero(by_project | by_pair)
    ps.append(live[noted])
    reasons.append(np.where(by_project[noted], missing[noted], pair.missing[noted]))
    fire = np.flatnonzero(~by_project & ~by_pair & holds & pair.holds)
    none = np.full(len(fire), -1, dtype=np.intp)
    nan = np.full(len(fire), np.nan)
    rows = Fired(live[fire], none, none, nan, nan, nan, np.zeros(len(fire), dtype=bool))
    rows = replace(rows, value=value[fire].tolist(), cells=cells[fire].tolist())
    return rows, _notes(rule.id, np.concatenate(ps), np.concatenate(reasons))


def _notes(rule: str, ps: np.ndarray, reasons: np.ndarray) -> list[tuple[int, Unresolved]]:
    """A note per project ``ps`` (each once) for its reason, in project order; one note per distinct reason, shared."""
    order = np.argsort(ps, kind="stable")
    texts = reasons[order].tolist()
    keys = list(zip(texts, map(type, texts), strict=True))  # a Failure is not the same note as its text
    made = {key: Unresolved(rule, str(key[0]), failed=isinstance(key[0], Failure)) for key in set(keys)}
    return list(zip(ps[order].tolist(), map(made.__getitem__, keys), strict=True))


def _rows_decided(expr: Expr, table, live: np.ndarray, values: np.ndarray, cells: np.ndarray) -> Decided:
    """A zonal condition per project ``live`` (its statistic and cells), once per distinct value of what it reads."""
    if not len(live):
        return Decided(np.zeros(0, dtype=bool), np.full(0, None, dtype=object))
    comparison = expr.comparison
    if comparison is not None and comparison[0] in ("value", "cells"):  # doubles: compared over the arrays
        name, compare, number = comparison
        return Decided(compare(values if name == "value" else cells, number), np.full(len(live), None, dtype=object))
    codes = table.codes(expr.reads)
    columns = [live if codes is None else codes[live]]
    columns += [value_codes(c) for n, c in (("value", values), ("cells", cells)) if n in expr.reads.names]
    first, inverse = distinct_rows(np.stack(columns, axis=1))
    values, cells = values.tolist(), cells.tolist()  # CEL reads Python floats
    decided = [
        decide_cached(expr, {"project": table.contexts[live[i]], "value": values[i], "cells": cells[i]})
        for i in first.tolist()
    ]
    return broadcast(decided, inverse)
