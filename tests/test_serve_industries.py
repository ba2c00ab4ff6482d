"""The industry search behind `GET /v1/industries`: codes, Chinese words and English words, best first."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from threelines import industry
from threelines.industry import search


def codes(query: str, limit: int = 200) -> list[str]:
    return [hit["code"] for hit in search(query, limit)]


def test_exact_code_first_then_codes_under_it():
    assert codes("2614")[0] == "C2614"
    found = codes("C30")
    assert found[0] == "C30"
    assert {"C3011", "C301", "C3099"} <= set(found)
    assert all(code.startswith("C30") for code in found)


def test_chinese_words_still_match():
    assert codes("有机化学") == ["C2614"]
    assert "C3011" in codes("水泥")


@pytest.mark.parametrize(
    ("query", "code"),
    [("cement", "C3011"), ("CEMENT", "C3011"), ("thermal power", "D4411"), ("Thermal Power", "D4411")],
)
def test_english_words_any_case(query, code):
    assert codes(query)[0] == code


def test_a_class_matches_through_its_parents_english_name():
    # C1711 (棉纺纱加工) has no English name of its own: its division's (Manufacture of textiles) finds it.
    assert industry.name_en("C1711") is None
    found = codes("textile")
    assert "C1711" in found
    assert "C17" in found
    # Own names rank before names matched through a parent.
    assert found.index("C17") < found.index("C1711")
    # Every word must match: "thermal" narrows the power stations to one.
    assert codes("thermal power") == ["D4411"]
    assert {"D4413", "D4415"} <= set(codes("power generation"))


def test_words_match_the_start_of_english_words():
    assert "C3120" in codes("steel")  # Steelmaking
    assert codes("teel") == []  # not inside a word


def test_no_match_and_the_limit():
    assert search("zzzz") == []
    assert len(search("manufacture", 7)) == 7
    assert search("")[0]["level"] == "class"


def test_hits_carry_both_names_and_the_level():
    assert search("D4411")[0] == {
        "code": "D4411",
        "name": "火力发电",
        "name_en": "Thermal power generation",
        "level": "class",
    }


def test_every_section_division_and_group_has_an_english_name():
    path = resources.files("threelines") / "data" / "gbt4754_2017.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1971
    missing = [r["code"] for r in rows if r["level"] != "class" and not r["name_en"].strip()]
    assert missing == []
    # English names are English: no Chinese characters in them.
    assert all(all(ord(ch) < 0x2E80 for ch in r["name_en"]) for r in rows)
