"""The access list (生态环境准入清单) as authorities publish it: a table of clauses.

One row per clause: the unit it covers (a unit code, a unit class, or ``*``
for the whole jurisdiction), its dimension (空间布局约束 / 污染物排放管控 /
环境风险防控 / 资源开发效率要求), the industries it concerns (GB/T 4754
prefixes, several per cell, with an optional exclude column), its type (禁止
= reject, 限制 = conditional, 要求 = a requirement to address), the clause
text and its basis. Headers may be Chinese or English; CSV or XLSX.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from threelines import industry
from threelines.errors import IndustryCodeError, RuleError

if TYPE_CHECKING:
    import pandas as pd

#: Column -> the headers it may have (compared without case and spaces).
HEADERS = {
    "id": ("id", "clause_id", "clause", "编号", "条款编号", "序号"),
    "scope": ("unit", "unit_code", "scope", "单元编码", "管控单元编码", "环境管控单元编码", "适用范围", "适用单元"),
    "dimension": ("dimension", "管控维度", "维度", "管控类别", "清单类型"),
    "industry": ("industry", "industries", "行业", "涉及行业", "行业代码", "适用行业"),
    "exclude": ("industry_exclude", "exclude", "除外行业", "排除行业", "不适用行业"),
    "outcome": ("outcome", "type", "类型", "管控类型", "准入类型", "要求类型"),
    "text": ("text", "requirement", "管控要求", "条款内容", "准入要求", "内容"),
    "basis": ("basis", "依据", "政策依据", "法规依据"),
    "level": ("level", "层级", "管控层级", "清单层级"),
    "source": ("source", "来源", "条款来源"),
    "matched": ("matched", "匹配词", "识别词"),
    "reason": ("reason", "待审原因", "审核原因"),
}
REQUIRED = ("scope", "dimension", "outcome", "text")

#: Dimension names as published, mapped to the rule dimensions.
DIMENSIONS = {
    "空间布局约束": "spatial_layout", "spatial_layout": "spatial_layout", "spatial layout": "spatial_layout",
    "污染物排放管控": "emission_control", "emission_control": "emission_control",
    "emission control": "emission_control",
    "环境风险防控": "risk_prevention", "risk_prevention": "risk_prevention", "risk prevention": "risk_prevention",
    "资源开发效率要求": "resource_efficiency", "资源利用效率要求": "resource_efficiency",
    "资源开发利用效率": "resource_efficiency", "resource_efficiency": "resource_efficiency",
    "resource efficiency": "resource_efficiency",
}  # fmt: skip
#: The published Chinese name of each dimension (the first listed above).
DIMENSIONS_ZH = {v: k for k, v in reversed(DIMENSIONS.items()) if not k.isascii()}

#: Clause types: 禁止 rejects, 限制 makes the verdict conditional, 要求 is a requirement only.
OUTCOMES = {
    "禁止": "reject", "reject": "reject", "prohibit": "reject", "prohibited": "reject",
    "限制": "conditional", "conditional": "conditional", "restrict": "conditional", "restricted": "conditional",
    "要求": "requirement", "requirement": "requirement", "require": "requirement", "鼓励": "requirement",
    "待审": "review", "review": "review", "待定": "review", "人工审核": "review",
}  # fmt: skip

#: Levels of the list: province-wide (全省总体管控要求), city, county, and unit-level clauses.
LEVELS = {
    "province": "province", "省": "province", "省级": "province", "全省": "province",
    "city": "city", "市": "city", "市级": "city", "地市": "city",
    "county": "county", "县": "county", "县级": "county", "区县": "county",
    "unit": "unit", "单元": "unit", "单元级": "unit", "管控单元": "unit",
}  # fmt: skip

#: Scope words for the whole jurisdiction and for the unit classes.
WHOLE = ("*", "全域", "全部", "all")
CLASSES = {
    "priority": "priority", "优先保护单元": "priority", "优先保护": "priority", "1": "priority",
    "key": "key", "重点管控单元": "key", "重点管控": "key", "2": "key",
    "general": "general", "一般管控单元": "general", "一般管控": "general", "3": "general",
}  # fmt: skip

_SPLIT = re.compile(r"[,，、;；\s]+")

#: What a clause means for a project, in the clause table of a result.
FINDINGS = ("reject", "conditional", "requirement", "review")


@dataclass(frozen=True)
class Clause:
    """One row of the access list.

    Attributes
    ----------
    id : str
    scope : str
        ``*``, a unit class (``priority`` / ``key`` / ``general``) or a unit code.
    dimension : str
    outcome : str
        ``reject``, ``conditional`` or ``requirement``.
    industry, exclude : tuple of str
        Canonical GB/T 4754 prefixes; an empty ``industry`` means every industry.
    text, basis : str
    where : str
        ``file:row`` of the clause, for messages.
    level : str or None
        ``province``, ``city``, ``county`` or ``unit``; None for a
        jurisdiction-wide clause whose level the manifest's adcode tells.
    source : str
        ``table`` (written as a list row) or ``prose`` (read from prose by
        ``threelines init``, see :mod:`threelines.package.prose`).
    matched : tuple of str
        For a prose clause, the keyword-table words that gave its industries.
    units : frozenset of str
        The unit codes of a scope that lists several (a city's units).
    reason : str or None
        Why a ``review`` clause could not be decided.
    """

    id: str
    scope: str
    dimension: str
    outcome: str
    industry: tuple[str, ...]
    exclude: tuple[str, ...]
    text: str
    basis: str | None
    where: str
    level: str | None = None
    source: str = "table"
    matched: tuple[str, ...] = ()
    units: frozenset[str] = frozenset()
    reason: str | None = None

    @property
    def names_a_unit(self) -> bool:
        """Whether the scope is a unit code or codes (not ``*`` nor a class)."""
        return self.scope not in ("*", "priority", "key", "general")

    @property
    def codes(self) -> frozenset[str]:
        """The unit codes the scope names (empty for ``*`` and a class)."""
        return self.units or (frozenset((self.scope,)) if self.names_a_unit else frozenset())

    def covers(self, code: str, cls: str) -> bool:
        """Tell whether the clause's scope includes a unit."""
        return self.scope == "*" or self.scope == cls or self.scope == code or code in self.units


def read_access_list(path: str | Path) -> tuple[list[Clause], list[str]]:
    """Read an access-list table (CSV or XLSX).

    Parameters
    ----------
    path : str or Path
        The table. A CSV may be UTF-8 (with or without BOM) or GB18030/GBK.

    Returns
    -------
    (list of Clause, list of str)
        The sound clauses, and one ``file:row: column: problem`` per bad row.

    Raises
    ------
    RuleError
        If the file cannot be read or lacks a required column.
    """
    path = Path(path)
    table = _read_table(path)
    columns = _columns(table, path)
    clauses, problems = [], []
    for i, row in enumerate(table.itertuples(index=False, name=None)):
        where = f"{path}:{i + 2}"  # header is row 1; blank rows are kept, so numbers match the file
        cells = {key: row[table.columns.get_loc(col)] for key, col in columns.items()}
        if not any(_text(v) for v in cells.values()):
            continue  # a blank row
        try:
            clauses.append(_clause(cells, where, i))
        except RuleError as exc:
            problems.append(str(exc))
    seen: dict[str, str] = {}
    for clause in clauses:
        if clause.id in seen:
            problems.append(f"{clause.where}: clause id {clause.id!r} is used twice (first at {seen[clause.id]})")
        seen.setdefault(clause.id, clause.where)
    return clauses, problems


def _read_table(path: Path) -> pd.DataFrame:
    """Read the cells: text from a CSV, text or numbers (as stored) from an XLSX."""
    import zipfile

    import pandas as pd

    if not path.is_file():
        raise RuleError(f"{path}: access list not found (paths are relative to the rule file)")
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            # dtype object keeps a number a number, so an industry code stored as 211 is caught
            return pd.read_excel(path, dtype=object, keep_default_na=False)
        text = None
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = path.read_text(encoding=encoding)
                break
            except UnicodeDecodeError:
                continue
        if text is None:
            raise RuleError(f"{path}: the access list is neither UTF-8 nor GB18030 text; save it as UTF-8")
        from io import StringIO

        # index_col=False: a trailing comma on every row must not shift the columns
        return pd.read_csv(StringIO(text), dtype=str, keep_default_na=False, index_col=False, skip_blank_lines=False)
    except RuleError:
        raise
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuleError(f"{path}: cannot read the access list ({first}); give a CSV or XLSX table") from None


def _columns(table: pd.DataFrame, path: Path) -> dict[str, str]:
    """Map our column names to the table's headers, or fail naming the missing ones."""
    normal = {re.sub(r"\s+", "", str(c)).lower(): c for c in table.columns}
    out = {}
    for key, names in HEADERS.items():
        found = [normal[n.lower()] for n in names if n.lower() in normal]
        if len(found) > 1:
            raise RuleError(f"{path}:1: columns {', '.join(map(str, found))} all name the {key}; keep one")
        if found:
            out[key] = found[0]
    missing = [k for k in REQUIRED if k not in out]
    if missing:
        raise RuleError(
            f"{path}:1: the access list has no {' / '.join(missing)} column; "
            + "; ".join(f"{k}: one of {', '.join(HEADERS[k])}" for k in missing)
        )
    return out


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a unit class 1 or a number typed into a spreadsheet
    return str(value).strip()


def _clause(raw: dict[str, object], where: str, i: int) -> Clause:
    """Check and build one clause from its cells."""

    def fail(column: str, message: str) -> RuleError:
        return RuleError(f"{where}: {column}: {message}")

    cells = {key: _text(value) for key, value in raw.items()}
    scope = cells.get("scope", "")
    key = scope.lower()
    if key in WHOLE:
        scope = "*"
    elif key in CLASSES or scope in CLASSES:
        scope = CLASSES.get(scope, CLASSES.get(key))
    elif not scope:
        raise fail("unit", "empty; give a unit code, a unit class or * for the whole jurisdiction")
    units = frozenset(c for c in _SPLIT.split(scope) if c) if scope not in ("*", *CLASSES.values()) else frozenset()
    if len(units) < 2:
        units = frozenset()  # one code: the scope itself
    level = LEVELS.get(cells.get("level", "")) or LEVELS.get(cells.get("level", "").lower())
    if cells.get("level") and level is None:
        raise fail("level", f"{cells.get('level')!r} is not one of province, city, county, unit (省, 市, 县, 单元)")
    if level is None and scope != "*":
        level = "unit"
    dimension = DIMENSIONS.get(cells.get("dimension", "")) or DIMENSIONS.get(cells.get("dimension", "").lower())
    if dimension is None:
        raise fail(
            "dimension",
            f"{cells.get('dimension')!r} is not one of 空间布局约束, 污染物排放管控, 环境风险防控, 资源开发效率要求",
        )
    outcome = OUTCOMES.get(cells.get("outcome", "")) or OUTCOMES.get(cells.get("outcome", "").lower())
    if outcome is None:
        raise fail(
            "type", f"{cells.get('outcome')!r} is not one of 禁止 (reject), 限制 (conditional), 要求 (requirement)"
        )
    codes = {}
    for column in ("industry", "exclude"):
        value = raw.get(column)
        # A spreadsheet cell holding one code may hold it as a number (211 for 0211).
        items = [value] if isinstance(value, int | float) and _text(value) else _SPLIT.split(cells.get(column, ""))
        try:
            codes[column] = tuple(industry.from_cell(c, what="code") for c in items if c != "" and c not in WHOLE)
        except IndustryCodeError as exc:
            raise fail(column, str(exc)) from None
    if not cells.get("text"):
        raise fail("text", "empty; the clause needs its text")
    source = "prose" if cells.get("source", "").lower() in ("prose", "文本", "条文") else "table"
    return Clause(
        id=cells.get("id") or f"list-{i + 1}",
        scope=scope,
        dimension=dimension,
        outcome=outcome,
        industry=codes["industry"],
        exclude=codes["exclude"],
        text=cells["text"],
        basis=cells.get("basis") or None,
        where=where,
        level=level,
        source=source,
        matched=tuple(w for w in _SPLIT.split(cells.get("matched", "")) if w),
        units=units,
        reason=cells.get("reason") or None,
    )


def clause_index(clauses) -> dict[str, list[tuple[int, Clause]]]:
    """Clauses by the scope key that selects them (``*``, a class, a unit code), each with its position.

    Built once per screening, it lets each project look only at the clauses
    of its own units: a provincial list holds thousands of unit clauses.
    """
    index: dict[str, list[tuple[int, Clause]]] = {}
    for i, clause in enumerate(clauses):
        for key in clause.codes or (clause.scope,):
            index.setdefault(key, []).append((i, clause))
    return index


def level_of_adcode(adcode: str | None) -> str:
    """The level of a jurisdiction from its 6-digit adcode (``360000`` province, ``360100`` city, else county)."""
    code = str(adcode or "")
    if len(code) == 6 and code.isdigit():
        return "province" if code.endswith("0000") else "city" if code.endswith("00") else "county"
    return "province"
