"""The field conventions of published 三线一单 data packages, in pinyin initials and in Chinese.

Layers are recognised by their fields, compared without case and spaces,
never by their file names (except red lines, which carry no convention of
their own beyond a code and a name: their file or layer name says 红线).
"""

from __future__ import annotations

import re

#: Dimension fields of the prose lists -> the access-list dimension.
DIMENSION_FIELDS = {
    "spatial_layout": ("KJBJYS", "空间布局约束"),
    "emission_control": ("PWWPFGK", "PWWPFKZ", "污染物排放管控"),
    "risk_prevention": ("HJFXFK", "环境风险防控"),
    "resource_efficiency": ("ZYKFXLYQ", "ZYLYXLYQ", "资源开发效率要求", "资源利用效率要求", "资源开发利用效率要求"),
}

#: Comprehensive control units (环境综合管控单元).
UNIT_FIELDS = {
    "code": ("HJZHGKDYBM", "HJGKDYBM", "环境管控单元编码", "环境综合管控单元编码", "管控单元编码", "单元编码"),
    "name": ("HJZHGKDYMC", "HJGKDYMC", "环境管控单元名称", "环境综合管控单元名称", "管控单元名称", "单元名称"),
    "class": ("ZHGKDYFL", "GKDYFL", "管控单元分类", "管控单元类别", "单元分类", "单元类别"),
    "province": ("PROV", "省", "省份", "省名称"),
    "city": ("CITY", "市", "地市", "市名称"),
    "county": ("AREA", "县", "区县", "县区", "县名称"),
    "remark": ("REMARK", "备注"),
}

#: Element zones (要素管控分区): ecological, water, air; code and name fields by kind.
ZONE_FIELDS = {
    "ecological": (("STHJYSGKFQBM", "生态环境管控分区编码", "生态分区编码"), ("STHJZHGKFQMC", "STHJYSGKFQMC",
                   "生态环境管控分区名称", "生态分区名称")),
    "water": (("SHJGKFQBM", "水环境管控分区编码", "水分区编码"), ("SHJGKFQMC", "水环境管控分区名称", "水分区名称")),
    "air": (("DQHJGKFQBM", "大气环境管控分区编码", "大气分区编码"),
            ("DQHJGKFQMC", "大气环境管控分区名称", "大气分区名称")),
}  # fmt: skip
ZONE_EXTRA = {
    "element": ("HJYS", "环境要素"),
    "subclass": ("YSXL", "要素细类"),
    "basin": ("LYMC", "流域名称"),
    "reach": ("HDMC", "河段名称"),
}

#: Red lines: a code and a name field.
REDLINE_FIELDS = {
    "code": ("HXBH", "BH", "STBHHXBH", "红线编号", "编号", "生态保护红线编码", "CODE"),
    "name": ("HXMC", "MC", "STBHHXMC", "红线名称", "名称", "生态保护红线名称", "NAME"),
}
#: Words in a file or layer name that say it holds red lines.
REDLINE_WORDS = ("生态保护红线", "红线", "redline", "red_line", "sthx")

#: Headers of the level of a list row (province / city / county / unit) and of its area code or name.
LIST_FIELDS = {
    "level": ("层级", "管控层级", "清单层级", "LEVEL", "CJ"),
    "basis": ("依据", "政策依据", "BASIS", "YJ"),
}


def normal(name: object) -> str:
    """A field name as compared: upper case, no spaces."""
    return re.sub(r"\s+", "", str(name)).upper()


def find(columns, names: tuple[str, ...]) -> str | None:
    """The first column whose normal form is one of ``names`` (in the order of ``names``)."""
    by_normal = {normal(c): c for c in columns}
    return next((by_normal[normal(n)] for n in names if normal(n) in by_normal), None)


def dimension_columns(columns) -> dict[str, str]:
    """The prose columns a table or layer has: dimension -> column."""
    out = {}
    for dimension, names in DIMENSION_FIELDS.items():
        column = find(columns, names)
        if column is not None:
            out[dimension] = column
    return out


def known(columns, groups) -> set[str]:
    """The columns that belong to one of the conventions in ``groups`` (dicts of name tuples)."""
    names = set()
    for group in groups:
        for value in group.values():
            flat = value if isinstance(value[0], str) else tuple(n for part in value for n in part)
            names |= {normal(n) for n in flat}
    return {c for c in columns if normal(c) in names}
