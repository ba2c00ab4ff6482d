"""Access-list prose as authorities publish it, split into clauses the screening can use.

A control unit's 空间布局约束, 污染物排放管控, 环境风险防控 and 资源开发效率要求
come as prose cells numbered in many styles (``1.`` ``2、`` ``（1）`` ``①``
``；``-separated). :func:`parse_prose` splits a cell into clauses and reads
from each one its type from its wording (禁止 prohibition, 限制 restriction,
要求 requirement) and the industries it names, by a keyword table shipped as
data (words -> GB/T 4754-2017 codes) that a jurisdiction can extend.

A clause becomes an ordinary list clause only when both are clear: 禁止 or
限制 with a recognised industry, or any 要求. Everything else is kept with
the outcome ``review`` and the reason, for a person to decide; it is never
dropped and never read as a pass.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from threelines import industry
from threelines.errors import IndustryCodeError, RuleError
from threelines.limits import MAX_CLAUSES_PER_CELL, MAX_KEYWORDS, MAX_PROSE_CHARS

#: Clause types, from the wording, and the list outcome each becomes.
KIND_OUTCOME = {"禁止": "reject", "限制": "conditional", "要求": "requirement"}

#: Numbering that starts a clause: 1. 2、 3． (1) （2） ① 一、 第一条. A number inside a
#: sentence ("1.5倍", "GB 3095-2012") is not one: it must follow the start or a break.
_BREAK = r"(?:^|(?<=[。；;：:\n\s]))"
_NUMBERING = re.compile(
    _BREAK + r"(?:\d{1,3}\s*[.、．](?!\d)|[一二三四五六七八九十]{1,3}\s*、|第[一二三四五六七八九十\d]{1,4}条)"
    r"|[（(]\s*(?:\d{1,3}|[一二三四五六七八九十]{1,3})\s*[)）]"
    r"|[①-⑳]"
)
#: Sentence ends and clause separators.
_SEPARATOR = re.compile(r"[；;。\n]+")
#: A dimension's name as a heading at the start of a cell ("空间布局约束：").
_HEADING = re.compile(
    r"^\s*(?:空间布局约束|污染物排放管控|环境风险防控|资源(?:开发|利用)(?:效率)?要求|其他要求)\s*[:：]\s*"
)

_PROHIBIT = re.compile(r"禁止|严禁|不得|不允许|不准|不予(?:审批|准入|批准|受理)|取缔|一律关停")
#: "不得低于 / 不得超过" state a standard to meet, not a prohibition.
_STANDARD = re.compile(r"不得(?:低于|高于|超过|少于|降低|突破|大于|小于)")
_RESTRICT = re.compile(
    r"限制|严格控制|严控|从严控制|原则上不|置换|等量替代|减量替代|倍量替代|削减替代|等量或减量|入驻.{0,8}园区|"
    r"控制.{0,8}(?:规模|强度|数量)|(?:须|应|必须)(?:进入|入驻|迁入|进)(?:合规|认定的?)?(?:化工|工业)?园区|入园"
)
_REQUIRE = re.compile(
    r"应|须|必须|要求|鼓励|推进|推动|加强|实施|执行|落实|开展|建立|实行|达到|满足|采用|配套|完善|确保|保障"
)
#: Conditions on where the project lies, which only the unit itself settles.
_LOCATION = re.compile(
    r"园区外|园区以外|合规园区|集中区外|范围内|公里|千米|\d+\s*米|岸线|沿江|沿河|沿湖|干流|支流|"
    r"建成区|城区|主城区|水源保护区|自然保护区|风景名胜区"
)
#: Industry words inside "除…外" name exceptions, not the industries the clause covers.
_EXCEPT = re.compile(r"除[^，,。；;]{1,40}?(?:以)?外")
#: An industry word followed by these names a place (化工园区), not an industry.
_PLACE_AFTER = ("园区", "集中区", "产业园", "基地", "聚集区")


@dataclass(frozen=True)
class ProseClause:
    """One clause read from a prose cell.

    Attributes
    ----------
    text : str
        The clause as published, without its numbering.
    kind : str or None
        ``禁止``, ``限制`` or ``要求`` from the wording; None when none is found.
    outcome : str
        ``reject``, ``conditional``, ``requirement``, or ``review`` when the
        clause cannot be decided by the tool.
    industry, exclude : tuple of str
        GB/T 4754 prefixes the clause names (``exclude``: named in 除…外).
    matched : tuple of str
        The keyword-table words that matched, in text order.
    reason : str or None
        Why a ``review`` clause could not be decided.
    """

    text: str
    kind: str | None
    outcome: str
    industry: tuple[str, ...]
    exclude: tuple[str, ...]
    matched: tuple[str, ...]
    reason: str | None = None


def split_prose(text: str, *, where: str = "prose") -> list[str]:
    """Split a prose cell into its clauses, numbering removed.

    Parameters
    ----------
    text : str
        A cell such as ``"1.禁止新建…。2、严格控制…"``.
    where : str
        How messages name the cell (file, unit, field).

    Returns
    -------
    list of str
        The clauses in order; empty for an empty cell.

    Raises
    ------
    RuleError
        If the cell is longer than :data:`~threelines.limits.MAX_PROSE_CHARS`
        or splits into more than :data:`~threelines.limits.MAX_CLAUSES_PER_CELL`.

    Examples
    --------
    >>> split_prose("（1）禁止新建化工项目；（2）严格控制水泥产能。")
    ['禁止新建化工项目', '严格控制水泥产能']
    """
    text = "" if text is None else str(text)
    if len(text) > MAX_PROSE_CHARS:
        raise RuleError(
            f"{where}: the prose has {len(text):,} characters, more than the limit of {MAX_PROSE_CHARS:,}; "
            "split the cell or check the file"
        )
    text = _HEADING.sub("", text.replace("\r", "\n").replace("\u3000", " "))
    pieces = []
    for numbered in _NUMBERING.split(text):
        pieces += _SEPARATOR.split(numbered)
    clauses = [p.strip(" \t，,、：:") for p in pieces]
    clauses = [c for c in clauses if len(c) > 1 or (c and not c.isascii())]
    if len(clauses) > MAX_CLAUSES_PER_CELL:
        raise RuleError(
            f"{where}: the prose splits into {len(clauses):,} clauses, more than the limit of "
            f"{MAX_CLAUSES_PER_CELL:,}; check the file"
        )
    return clauses


def clause_kind(text: str) -> str | None:
    """The clause's type from its wording: ``禁止``, ``限制``, ``要求``, or None.

    Prohibition wins over restriction, restriction over requirement
    (``严格控制…，须…置换`` is a restriction).

    Examples
    --------
    >>> clause_kind("禁止新建、扩建焦化项目")
    '禁止'
    >>> clause_kind("清洁生产水平不得低于国内先进水平")
    '要求'
    """
    plain = _STANDARD.sub("须", text)
    if _PROHIBIT.search(plain):
        return "禁止"
    if _RESTRICT.search(plain):
        return "限制"
    if _REQUIRE.search(plain):
        return "要求"
    return None


def find_industries(
    text: str, keywords: dict[str, tuple[str, ...]] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The industries a clause names: (codes, codes named as exceptions, words matched).

    Longest words win and a word is not matched again inside a longer one
    (燃煤发电, not also 发电); a word followed by 园区 or 基地 names a place.

    Examples
    --------
    >>> find_industries("禁止新建印染、制革项目")[0]
    ('C1713', 'C1723', 'C1733', 'C1743', 'C1752', 'C1762', 'C1910')
    """
    table = keywords if keywords is not None else default_keywords()
    words = _pattern(tuple(sorted(table, key=lambda w: (-len(w), w))))
    exceptions = [m.span() for m in _EXCEPT.finditer(text)]
    codes: dict[str, None] = {}
    excluded: dict[str, None] = {}
    matched: list[str] = []
    for m in words.finditer(text):
        if text.startswith(_PLACE_AFTER, m.end()):
            continue
        inside = any(a <= m.start() < b for a, b in exceptions)
        (excluded if inside else codes).update(dict.fromkeys(table[m.group()]))
        matched.append(m.group())
    return tuple(codes), tuple(c for c in excluded if c not in codes), tuple(dict.fromkeys(matched))


def parse_clause(text: str, *, level: str = "unit", keywords: dict[str, tuple[str, ...]] | None = None) -> ProseClause:
    """Read one clause: its type, industries and the outcome it has in a screening.

    Parameters
    ----------
    text : str
        One clause (see :func:`split_prose`).
    level : str
        ``province``, ``city``, ``county`` or ``unit``: above the unit, a
        condition on where the project lies (园区外, 岸线1公里范围内) cannot be
        checked from the unit the project is in, so such a clause is for review.
    keywords : dict, optional
        Word -> GB/T 4754 prefixes; the shipped table by default.

    Returns
    -------
    ProseClause
    """
    kind = clause_kind(text)
    codes, exclude, matched = find_industries(text, keywords)
    reason = None
    if kind is None:
        reason = "no 禁止 / 限制 / 要求 wording found"
    elif kind != "要求" and not codes:
        reason = f"a {kind} clause naming no industry the keyword table knows"
    elif kind != "要求" and level != "unit" and (where := _LOCATION.search(text)):
        reason = f"a {kind} clause with a condition on location ({where.group()}) that the unit cannot settle"
    outcome = "review" if reason else KIND_OUTCOME[kind]
    return ProseClause(text, kind, outcome, codes, exclude, matched, reason)


def parse_prose(
    text: str, *, level: str = "unit", keywords: dict[str, tuple[str, ...]] | None = None, where: str = "prose"
) -> list[ProseClause]:
    """Split a prose cell and read every clause (see :func:`split_prose` and :func:`parse_clause`)."""
    return [parse_clause(c, level=level, keywords=keywords) for c in split_prose(text, where=where)]


@lru_cache(maxsize=1)
def default_keywords() -> dict[str, tuple[str, ...]]:
    """The shipped keyword table (``threelines/data/industry_keywords.csv``)."""
    path = resources.files("threelines") / "data" / "industry_keywords.csv"
    return _parse_keywords(path.read_text(encoding="utf-8"), "industry_keywords.csv")


def load_keywords(path: str | Path | None = None) -> dict[str, tuple[str, ...]]:
    """The shipped keyword table, extended (and overridden word by word) by a jurisdiction's own.

    Parameters
    ----------
    path : str or Path, optional
        A CSV with columns ``word,codes`` (codes separated by spaces);
        lines starting with ``#`` are comments.

    Raises
    ------
    RuleError
        For an unreadable table, an unknown code, or more rows than
        :data:`~threelines.limits.MAX_KEYWORDS`.
    """
    table = dict(default_keywords())
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(f"{path}: cannot read the keyword table ({exc}); give a UTF-8 CSV") from None
        table.update(_parse_keywords(text, str(path)))
    return table


def _parse_keywords(text: str, where: str) -> dict[str, tuple[str, ...]]:
    """Read a keyword CSV (``word,codes[,note]``), checking every code."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) > MAX_KEYWORDS + 1:
        raise RuleError(f"{where}: {len(lines) - 1:,} keywords, more than the limit of {MAX_KEYWORDS:,}")
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    if rows and not {"word", "codes"} <= set(rows[0]):
        raise RuleError(f"{where}:1: the keyword table needs the columns word,codes")
    table = {}
    for i, row in enumerate(rows, start=2):
        word = (row.get("word") or "").strip()
        if not word:
            continue
        try:
            codes = tuple(industry.normalise(c, what="code") for c in (row.get("codes") or "").split())
        except IndustryCodeError as exc:
            raise RuleError(f"{where}:{i}: word {word!r}: {exc}") from None
        if not codes:
            raise RuleError(f"{where}:{i}: word {word!r} has no codes; give GB/T 4754 codes separated by spaces")
        table[word] = codes
    return table


@lru_cache(maxsize=8)
def _pattern(words: tuple[str, ...]) -> re.Pattern:
    """One alternation of all the words, longest first (regex alternation takes the first that fits)."""
    return re.compile("|".join(re.escape(w) for w in words)) if words else re.compile(r"(?!)")
