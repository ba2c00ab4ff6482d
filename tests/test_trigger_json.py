"""A batch's records, written as JSON a rule's rows at a time, are the text of the records the engine gives."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from threelines.batch.summary import summary_row
from threelines.engine.chunk_records import batch_records, batch_results
from threelines.engine.json_values import JSON_OPTIONS, json_tokens
from threelines.engine.records import verdict_records
from threelines.engine.screen import screen
from threelines.engine.trigger_texts import quantities, quantity
from threelines.engine.verdict import Later
from threelines.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"

texts = st.text(alphabet=st.sampled_from([*'ab,"\\:{}[] ', "\n", "\x00", "地", "😀", "\u2028"]), max_size=6)
numbers = st.one_of(
    st.floats(), st.integers(-(2**63), 2**63 - 1), st.booleans(), st.floats().map(np.float64),
    st.integers(-(2**31), 2**31 - 1).map(np.int64),
)  # fmt: skip


#: Columns of a trigger table: numbers, texts, or both, with gaps.
columns = st.one_of(
    st.lists(st.one_of(st.none(), numbers), max_size=6),
    st.lists(st.one_of(st.none(), texts), max_size=6),
    st.lists(st.one_of(st.none(), texts, numbers), max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(columns)
def test_a_column_cut_from_one_array_is_each_value_written_alone(values):
    assert json_tokens(values) == [orjson.dumps(value, option=JSON_OPTIONS) for value in values]


def test_a_text_that_looks_like_a_cut_between_texts():
    values = ['a",', "b", '",', "\\", ",", "", "\\\\", '"', None]
    assert json_tokens(values) == [orjson.dumps(value) for value in values]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(),
            st.floats(-1000, 1000),
            st.integers(-200_000, 200_000).map(lambda n: n / 200),  # halves of a cent, and exact cents
            st.sampled_from([999.985, 999.99, 999.995, -0.004, -0.0, 2.675, 1.005]),
        ),
        max_size=8,
    )
)
def test_quantities_a_column_at_a_time_are_each_written_alone(values):
    assert quantities(np.array(values, dtype=float)) == [quantity(value) for value in values]


def _generated(n: int):
    spec = importlib.util.spec_from_file_location("make_golden", ROOT / "scripts" / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generated_projects(n, seed=7)


def _rules(tmp_path, manifest, variant: str):
    """The sample's rules; ``zh-first`` gives every text in Chinese first, ``one-text`` a single unnamed one."""
    doc = yaml.safe_load((SAMPLE / "rules.yaml").read_text(encoding="utf-8"))
    for rule in doc["rules"]:
        rule.pop("examples", None)  # their footprints lie beside the sample's rules
        for key in ("title", "message"):
            if isinstance(rule.get(key), dict):
                texts = rule[key]
                rule[key] = {"zh": texts["zh"], "en": texts["en"]} if variant == "zh-first" else texts["en"]
    doc["access_list"]["path"] = str(SAMPLE / doc["access_list"]["path"])
    path = tmp_path / f"rules-{variant}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return load_rules(path, manifest)


@pytest.mark.parametrize("variant", ["sample", "zh-first", "one-text"])
def test_batch_records_are_the_text_of_the_records(tmp_path, manifest, variant):
    rules = load_rules(SAMPLE / "rules.yaml", manifest) if variant == "sample" else _rules(tmp_path, manifest, variant)
    frame = _generated(400)
    for lang in (None, "en", "zh"):
        # Each from verdicts of its own, so that neither reads what the other made.
        written = [
            orjson.dumps(r, option=JSON_OPTIONS) for r in batch_records(screen(frame, manifest, rules).verdicts, lang)
        ]
        verdicts = screen(frame, manifest, rules).verdicts
        records = verdict_records(verdicts, lang)
        assert written == [orjson.dumps(r, option=JSON_OPTIONS) for r in records]
        fired = [
            (t, r)
            for v, record in zip(verdicts, records, strict=True)
            for t, r in zip(v.triggers, record["triggers"], strict=True)
        ]
        assert len(fired) > 400
        for trigger, record in fired:  # the texts in one language, as a trigger's in all of them
            translation = (trigger.translations or {}).get(lang)
            if translation:
                assert (record["title"], record["message"]) == (translation["title"], translation["message"])
            else:
                assert (record["title"], record["message"]) == (trigger.title, trigger.message)
        if variant == "one-text":  # the access list's clauses still speak both languages
            ids = {rule.id for rule in rules.rules}
            assert all(trigger.translations is None for trigger, _ in fired if trigger.rule in ids)
            assert any(trigger.translations for trigger, _ in fired if trigger.rule not in ids)


def test_triggers_are_made_only_when_read(manifest):
    rules = load_rules(SAMPLE / "rules.yaml", manifest)
    frame = _generated(300)
    verdicts = screen(frame, manifest, rules).verdicts
    written = batch_records(verdicts)  # as a batch writes them: from the rows that fired
    fired = [[(t.rule, t.outcome) for t in v.fired_rows()] for v in verdicts]
    assert all(type(v._triggers) is Later for v in verdicts)  # no trigger object made
    travelled = pickle.loads(pickle.dumps(verdicts))  # made on the way, the rows left behind
    assert all(type(v._triggers) is list and all(t.row is None for t in v.triggers) for v in travelled)
    read = screen(frame, manifest, rules).verdicts
    assert [v.triggers for v in verdicts] == [v.triggers for v in read] == [v.triggers for v in travelled]
    assert fired == [[(t.rule, t.outcome) for t in v.fired_rows()] for v in read]
    assert sum(map(len, fired)) > 300
    assert [orjson.dumps(r, option=JSON_OPTIONS) for r in written] == [
        orjson.dumps(r, option=JSON_OPTIONS) for r in verdict_records(read)
    ]


def test_batch_tallies_are_the_summary_of_the_records(manifest):
    rules = load_rules(SAMPLE / "rules.yaml", manifest)
    frame = _generated(400)
    records, tallies = batch_results(screen(frame, manifest, rules).verdicts)
    records = [orjson.loads(orjson.dumps(record, option=JSON_OPTIONS)) for record in records]  # triggers read back
    assert {tally[0] for tally in tallies} > {0}
    assert {tally[1] for tally in tallies} > {0}
    assert [summary_row(r, tally) for r, tally in zip(records, tallies, strict=True)] == list(map(summary_row, records))


@pytest.mark.parametrize("made", ["every other read", "pickled", "mixed screenings"])
def test_batch_results_whether_triggers_were_made_or_not(manifest, made):
    rules = load_rules(SAMPLE / "rules.yaml", manifest)
    frame = _generated(200)
    expected = screen(frame, manifest, rules).verdicts
    verdicts = screen(frame, manifest, rules).verdicts
    if made == "every other read":
        for verdict in verdicts[::2]:
            assert verdict.triggers is not None  # made now, for the whole screening
    elif made == "pickled":
        verdicts = pickle.loads(pickle.dumps(verdicts))
    else:  # verdicts of two screenings, one with its triggers made, in another order
        other = pickle.loads(pickle.dumps(screen(frame, manifest, rules).verdicts))
        verdicts = [v if i % 3 else other[i] for i, v in enumerate(verdicts)][::-1]
        expected = expected[::-1]
    records, tallies = batch_results(verdicts)
    assert [orjson.dumps(r, option=JSON_OPTIONS) for r in records] == [
        orjson.dumps(r, option=JSON_OPTIONS) for r in verdict_records(expected)
    ]
    read = [orjson.loads(orjson.dumps(r, option=JSON_OPTIONS)) for r in records]
    assert [summary_row(r, tally) for r, tally in zip(read, tallies, strict=True)] == list(map(summary_row, read))
    assert sum(tally[0] + tally[1] for tally in tallies) > 50


def test_a_verdict_made_later_takes_its_fields_in_the_order_they_are_declared():
    """``Verdict.later`` takes them by position: a field added or moved must be added or moved there too."""
    import inspect
    from dataclasses import fields

    from threelines.engine.verdict import Verdict

    declared = [f.name.lstrip("_") for f in fields(Verdict)]
    assert list(inspect.signature(Verdict.later).parameters) == declared


def test_a_clause_row_sums_its_units_one_after_another():
    """A clause covering several units: overlap and share summed in the units' order, from 0.0 (not compensated)."""
    from threelines.engine.decisions.rows import ClauseFired
    from threelines.engine.triggers import _clause_rows
    from threelines.engine.verdict import UnitShare
    from threelines.rules.access_list import read_access_list

    clause = read_access_list(SAMPLE / "access_list.csv")[0][0]
    units = [UnitShare(f"U{i}", None, "priority", m2, share) for i, (m2, share) in enumerate(
        [(0.7, 0.7), (0.2, 0.2), (0.1, 0.1)])]  # fmt: skip
    fired = ClauseFired(p=np.array([0]), clause=[clause], width=np.array([3]), units=units, layer="units")
    [(projects, positions, rows)] = _clause_rows(fired)
    assert projects.tolist() == [0]
    assert positions.tolist() == [0]
    # 0.7 + 0.2 + 0.1 one after another; a compensated sum (Python 3.12's) gives 1.0.
    assert rows.columns["overlap_m2"] == [0.9999999999999999]
    assert rows.columns["overlap_ratio"] == [0.9999999999999999]
    assert rows.columns["feature_id"] == ["U0"]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        columns,
        st.lists(texts, max_size=6),
        st.lists(st.one_of(st.none(), st.floats()), max_size=80),  # long enough to be rounded in numpy
    ),
    st.sampled_from([None, 0, 2, 6]),
)
def test_a_column_written_at_once_is_each_value_rounded_and_written_alone(values, places):
    from threelines.engine.json_values import column_texts, json_number

    assume(places is None or not any(isinstance(value, np.generic) for value in values))  # numpy's round: not ours
    written, quoted = column_texts(values, places)
    if quoted:
        written = [b'"' + text + b'"' for text in written]
    assert written == [orjson.dumps(json_number(value, places), option=JSON_OPTIONS) for value in values]


class _OneText:
    languages = ()

    def __init__(self, n):
        self.n = n

    def title(self, lang):
        return "t"

    def messages(self, lang):
        return [f"m{i}, with a comma" for i in range(self.n)]


@pytest.mark.parametrize(
    "column",
    [[0.0, -0.0, 0.0], [-0.0, 0.0], [1, 1.0, True], [1.0, 1.0], [2.675, 2.675], [None, None], ["HX1", "HX1"],
     [float("nan"), float("nan")], [1e300, 1e300], [3, 3]],
)  # fmt: skip
def test_a_column_of_one_value_is_written_as_each_row_has_it(column):
    """A table's column whose values are all one is written once: only when they would all be written alike."""
    from threelines.engine.records import TriggerRows
    from threelines.engine.verdict import Verdict

    same = {"rule": "r", "title": "t", "outcome": "conditional", "dimension": "d", "layer": "l", "basis": None}
    n = len(column)
    columns = {"overlap_m2": column, "distance_m": column, "feature_id": column, "feature_name": [None] * n}
    rows = TriggerRows(same, columns, _OneText(n))
    verdicts = [Verdict(project={"id": "P", "name": None}, triggers=rows.triggers())]
    written = [orjson.dumps(r, option=JSON_OPTIONS) for r in batch_records(verdicts)]
    assert written == [orjson.dumps(r, option=JSON_OPTIONS) for r in verdict_records(verdicts)]
