"""Access-list tables: Chinese and English headers, CSV and XLSX, every bad row named."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from threelines.errors import RuleError
from threelines.rules import check_rules, load_rules
from threelines.rules.access_list import read_access_list

ENGLISH = """id,unit,dimension,industry,exclude,type,text,basis
E1,*,spatial layout,C2521,,prohibit,No coking plants,guide 2022
E2,priority,emission_control,,,requirement,No new discharge,opinion 2020
E3,ZH36012120003,risk prevention,"C26, C27",C2661,restrict,Risk plan,park EIA
E4,general,resource efficiency,*,,requirement,Save water,opinion 2020
"""


def test_english_headers(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(ENGLISH, encoding="utf-8")
    clauses, problems = read_access_list(path)
    assert problems == []
    assert [(c.id, c.scope, c.dimension, c.outcome) for c in clauses] == [
        ("E1", "*", "spatial_layout", "reject"),
        ("E2", "priority", "emission_control", "requirement"),
        ("E3", "ZH36012120003", "risk_prevention", "conditional"),
        ("E4", "general", "resource_efficiency", "requirement"),
    ]
    assert clauses[2].industry == ("C26", "C27")
    assert clauses[2].exclude == ("C2661",)
    assert clauses[3].industry == ()


def test_xlsx_and_gbk_csv_read_the_same(tmp_path, sample_dir):
    csv = sample_dir / "access_list.csv"
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table.to_excel(tmp_path / "list.xlsx", index=False)
    (tmp_path / "gbk.csv").write_bytes(csv.read_text("utf-8").encode("gb18030"))
    reference, _ = read_access_list(csv)
    for name in ("list.xlsx", "gbk.csv"):
        clauses, problems = read_access_list(tmp_path / name)
        assert problems == []
        assert [(c.id, c.scope, c.industry, c.text) for c in clauses] == [
            (c.id, c.scope, c.industry, c.text) for c in reference
        ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("X1,*,水环境,,,禁止,t,b", "list.csv:2: dimension: '水环境' is not one of 空间布局约束"),
        ("X1,*,空间布局约束,C9999,,禁止,t,b", "list.csv:2: industry: code 'C9999' is not a GB/T 4754-2017 code"),
        (
            "X1,*,空间布局约束,,,不许,t,b",
            "list.csv:2: type: '不许' is not one of 禁止 (reject), 限制 (conditional), 要求",
        ),
        ("X1,,空间布局约束,,,禁止,t,b", "list.csv:2: unit: empty; give a unit code, a unit class or *"),
        ("X1,*,空间布局约束,,,禁止,,b", "list.csv:2: text: empty; the clause needs its text"),
    ],
)
def test_bad_rows_are_named(tmp_path, row, message):
    path = tmp_path / "list.csv"
    path.write_text("编号,适用范围,管控维度,涉及行业,除外行业,类型,管控要求,依据\n" + row + "\n", encoding="utf-8")
    clauses, problems = read_access_list(path)
    assert clauses == []
    assert problems[0].startswith(f"{tmp_path}/{message}")


def test_missing_columns(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("编号,管控要求\nA,t\n", encoding="utf-8")
    with pytest.raises(RuleError, match=r"list.csv:1: the access list has no scope / dimension / outcome column"):
        read_access_list(path)


def test_unknown_unit_codes_and_duplicate_ids_are_reported(tmp_path, manifest, sample_dir):
    shutil.copytree(sample_dir, tmp_path, dirs_exist_ok=True)
    text = (sample_dir / "access_list.csv").read_text("utf-8")
    text += "QY-01,全域,空间布局约束,,,要求,duplicate,b\nZZ-01,ZH36012199999,空间布局约束,,,要求,ghost,b\n"
    (tmp_path / "access_list.csv").write_text(text, encoding="utf-8")
    _, problems = check_rules(tmp_path / "rules.yaml", manifest)
    assert problems == [
        f"{tmp_path / 'access_list.csv'}:35: clause id 'QY-01' is used twice (first at {tmp_path / 'access_list.csv'}:2)",
        f"{tmp_path / 'access_list.csv'}:36: unit: 'ZH36012199999' is not a unit code of layer 'units'",
    ]
    with pytest.raises(RuleError, match="is used twice"):
        load_rules(tmp_path / "rules.yaml", manifest)


def test_clause_and_rule_ids_must_differ(tmp_path, manifest, sample_dir):
    shutil.copytree(sample_dir, tmp_path, dirs_exist_ok=True)
    rules = (sample_dir / "rules.yaml").read_text("utf-8").replace("id: fuel-ban", "id: QY-03")
    (tmp_path / "rules.yaml").write_text(rules, encoding="utf-8")
    _, problems = check_rules(tmp_path / "rules.yaml", manifest)
    assert len(problems) == 1
    assert "rule 'QY-03': id is used twice (first at " in problems[0]


def test_coarse_or_missing_industry_is_unresolved_for_clauses(run, sample_dir):
    import json

    doc = json.loads(
        run("screen", sample_dir / "projects" / "P07.geojson", "--industry", "C", "--format", "json").stdout
    )
    reasons = {n["rule"]: n["reason"] for n in doc["unresolved"]}
    assert reasons["QY-05"] == "the project's industry code C is coarser than the rule's C26; give its class code"
    assert [t["rule"] for t in doc["triggers"]] == ["YX-01", "SY-01"]


HEADER = "编号,适用范围,管控维度,涉及行业,除外行业,类型,管控要求,依据\n"


def test_trailing_commas_and_blank_rows(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        HEADER.replace("\n", ",\n")
        + "A1,全域,空间布局约束,C26,,禁止,t,b,\n\n\nA2,1,污染物排放管控,,,要求,t,b,\nA3,*,水,,,要求,t,b,\n",
        encoding="utf-8",
    )
    clauses, problems = read_access_list(path)
    assert [(c.id, c.scope, c.industry) for c in clauses] == [("A1", "*", ("C26",)), ("A2", "priority", ())]
    assert problems == [
        f"{path}:6: dimension: '水' is not one of 空间布局约束, 污染物排放管控, 环境风险防控, 资源开发效率要求"
    ]


def test_xlsx_number_that_lost_its_leading_zero(tmp_path):
    table = pd.DataFrame(
        {"编号": ["N1", "N2"], "适用范围": ["*", "*"], "管控维度": ["空间布局约束"] * 2, "涉及行业": [211, 2614],
         "类型": ["禁止"] * 2, "管控要求": ["t", "t"]}
    )  # fmt: skip
    table.to_excel(tmp_path / "list.xlsx", index=False)
    clauses, problems = read_access_list(tmp_path / "list.xlsx")
    assert [(c.id, c.industry) for c in clauses] == [("N2", ("C2614",))]
    assert problems == [
        f"{tmp_path / 'list.xlsx'}:2: industry: code 211 is a number that may have lost a leading zero; "
        "store the column as text (e.g. '0211')"
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.xlsx", b"PK\x03\x04 not really a zip", "cannot read the access list"),
        (
            "list.csv",
            (HEADER.replace("类型", "类型,管控类型")).encode(),
            "columns 类型, 管控类型 all name the outcome; keep one",
        ),
        ("latin.csv", b"\xff\xfe\x00garbage\x81\x82", "the access list is neither UTF-8 nor GB18030 text"),
    ],
)
def test_unreadable_lists(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RuleError) as info:
        read_access_list(path)
    assert message in str(info.value)
    assert str(info.value).count(str(path)) == 1
