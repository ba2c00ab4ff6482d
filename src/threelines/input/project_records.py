"""A project as results show it (every attribute, the industry's name, the areas), and the maps rules see.

A record holds every field of :data:`FIELDS`, None where not given; the
``project`` map a rule sees holds the given values only, made when first
read (:class:`ProjectMaps`): rules read the values a column at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from threelines import industry
from threelines.engine.measure import M2_PER_MU
from threelines.input.attributes import ATTRIBUTES


def project_record(attrs: dict[str, Any], area_m2: float) -> dict[str, Any]:
    """A project as results show it: every attribute (None where not given), the industry name, the areas."""
    return project_records([attrs], [area_m2])[0][0]


#: The fields of a project's record, in order: its attributes, the industry's name, the areas.
FIELDS = (*ATTRIBUTES, "industry_name", "area_m2", "area_ha", "area_mu")


def project_records(
    attrs: list[dict[str, Any]], areas_m2, columns: dict[str, np.ndarray] | None = None
) -> tuple[list[dict[str, Any]], ProjectMaps]:
    """Projects as results show them (see :func:`project_record`), and the maps rules see: their given values only.

    Each record is a copy of a record with nothing given, updated with the
    project's attributes (the fields keep their order); the maps are made
    from the records when first read (see :class:`ProjectMaps`), their
    columns taken from ``columns`` (the attributes' values as columns) if given.
    """
    area = np.asarray(areas_m2, dtype=float).reshape(-1)
    codes = [project.get("industry") for project in attrs]
    names = {code: industry.name(code) for code in set(codes) if code}  # once per distinct code
    records = []
    rows = zip(attrs, codes, area.tolist(), (area / 1e4).tolist(), (area / M2_PER_MU).tolist(), strict=True)
    for project, code, m2, ha, mu in rows:
        record = _NOTHING_GIVEN.copy()
        record.update(project)
        if len(record) > len(_NOTHING_GIVEN):  # names that are not attributes: the attributes only
            record = _NOTHING_GIVEN | {key: project.get(key) for key in ATTRIBUTES}
        record["industry_name"] = names[code] if code else None
        record["area_m2"], record["area_ha"], record["area_mu"] = m2, ha, mu
        records.append(record)
    return records, ProjectMaps(records, shared=([None] * len(records), dict(columns or {})))


#: A record with nothing given, in the order records hold their fields.
_NOTHING_GIVEN = dict.fromkeys(FIELDS)


class ProjectMaps(Sequence):
    """Per project, the ``project`` map rules see: its record's given values only (in the order of :data:`FIELDS`).

    A map is made when first read; most never are: rules read the values a
    column at a time (:meth:`values`, :meth:`column`, :meth:`given`), each
    column made once. :meth:`take` gives the maps of some of the projects.
    """

    def __init__(self, records: list[dict[str, Any]], rows: np.ndarray | None = None, shared: tuple | None = None):
        self._records, self._rows = records, rows
        # What every take of these projects shares: the maps made, and the columns.
        self._made, self._columns = shared or ([None] * len(records), {})

    def __len__(self) -> int:
        return len(self._records) if self._rows is None else len(self._rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        p = i if self._rows is None else int(self._rows[i])
        found = self._made[p]
        if found is None:
            record = self._records[p]
            found = self._made[p] = {key: v for key in FIELDS if (v := record[key]) is not None}
        return found

    def __iter__(self):
        return map(self.__getitem__, range(len(self)))

    def take(self, rows: np.ndarray) -> ProjectMaps:
        """The maps of the projects ``rows`` (positions in these)."""
        rows = rows if self._rows is None else self._rows[rows]
        return ProjectMaps(self._records, rows, (self._made, self._columns))

    def values(self, key: str) -> np.ndarray:
        """Per project: the value of the field ``key`` (None where not given), as an array of objects."""
        if key not in _NOTHING_GIVEN:
            return np.full(len(self), None, dtype=object)
        column = self._whole(key)
        return column if self._rows is None else column[self._rows]

    def _whole(self, key: str) -> np.ndarray:
        """Per project of all the takes: the value of the field ``key`` (a field of the records), made once."""
        column = self._columns.get(key)
        if column is None:
            records = self._records
            column = self._columns[key] = np.fromiter(map(itemgetter(key), records), dtype=object, count=len(records))
        return column

    def column(self, key: str, absent: Any) -> list[Any]:
        """Per project: the map's value for ``key``, ``absent`` where the map has none."""
        values, given = self.values(key), self.given(key)
        return (values if given.all() else np.where(given, values, absent)).tolist()

    def given(self, key: str) -> np.ndarray:
        """Per project: whether the map has ``key`` (made once per key: the rules ask it of the same fields often)."""
        if key not in _NOTHING_GIVEN:
            return np.zeros(len(self), dtype=bool)
        found = self._columns.get((key, "given"))
        if found is None:
            found = self._columns[key, "given"] = self._whole(key) != None  # noqa: E711  (plain values: not None)
            found.flags.writeable = False  # shared by every call and take
        return found if self._rows is None else found[self._rows]
