"""Each project's input hash: what a batch re-run compares to skip the projects already screened.

A project's hash covers where it came from (file, layer, feature), its
attributes and its footprint's WKB, under the digest of the manifest, every
layer file and the rules (:func:`~threelines.report.provenance.setup_digest`).
:func:`~threelines.batch.local.run_batch` hashes each piece of an input as it
is placed, and ``verify`` hashes the inputs again to find each record.
"""

from __future__ import annotations

import hashlib
import json

import orjson

from threelines.input.projects import Projects
from threelines.report.provenance import input_path


def project_hashes(projects: Projects, digest: str, anchor: tuple[str, str] | None = None) -> list[str]:
    """Each project's input hash: where it came from, its attributes and geometry (WKB), under the run's ``digest``.

    Where it came from (its key) is part of the hash, so that the same
    project in two inputs gets a record for each. A key's file is hashed as
    ``anchor`` says: ``(input, recorded)``, the input as read and its path
    as ``provenance.json`` records it; a key's file is hashed as that
    recorded path followed by the member's place in the input, so that the
    hash does not depend on how the path was typed, nor on where ``verify``
    finds the input later.
    """
    wkbs = projects.wkb()  # kept: the chunks' pickling for the workers takes it too
    keys = projects.keys or [(projects.source, None, i) for i in range(len(projects))]
    if anchor is not None and anchor[0] != "-":
        given, recorded = str(input_path(anchor[0])), anchor[1]
        keys = [(recorded + f[len(given) :] if f.startswith(given) else f, *rest) for f, *rest in keys]
    start = hashlib.sha256(digest.encode())
    out = []
    for text, wkb in zip(_key_and_attrs_json(keys, projects.attrs), wkbs, strict=True):
        h = start.copy()
        h.update(text.encode())
        h.update(wkb)
        out.append(h.hexdigest()[:32])
    return out


#: How a project's key and attributes are written into its input hash (as ``json.dumps`` with these options).
_HASHED_JSON = json.JSONEncoder(sort_keys=True, default=str)


def _key_and_attrs_json(keys: list[tuple], attrs: list[dict]) -> list[str]:
    """Each project's ``json.dumps([key, attrs], sort_keys=True, default=str)``, the same text, made column by column.

    Projects of one input share their attribute names, so the text is a
    template with one gap per value; each column's values are encoded in one
    call of the JSON encoder (:func:`_json_tokens`). Projects whose
    attribute names differ are encoded one by one.
    """
    names = attrs[0].keys() if attrs else {}
    if not all(type(n) is str for n in names) or any(a.keys() != names for a in attrs) or {*map(len, keys)} - {3}:
        return [_HASHED_JSON.encode([key, a]) for key, a in zip(keys, attrs, strict=True)]
    order = sorted(names)
    template = "[[%s, %s, %s], {" + ", ".join(_HASHED_JSON.encode(n).replace("%", "%%") + ": %s" for n in order) + "}]"
    columns = [_json_tokens([key[i] for key in keys]) for i in range(3)]
    columns += [_json_tokens([a[n] for a in attrs]) for n in order]
    return [template % values for values in zip(*columns, strict=True)]


def _json_tokens(values: list) -> list[str]:
    """Each value's JSON text (as :data:`_HASHED_JSON` writes it), from one encoding of the whole list.

    The list's text is its values' texts joined by ``", "``; a value whose
    own text holds ``", "`` (a string, a nested list) makes the split come out
    longer, and then each value is encoded on its own.
    """
    if values and {*map(type, values)} <= {float, type(None)}:
        tokens = _float_tokens(values)
        if tokens is not None:
            return tokens
    tokens = _HASHED_JSON.encode(values)[1:-1].split(", ") if values else []
    if len(tokens) != len(values):
        tokens = [_HASHED_JSON.encode(v) for v in values]
    return tokens


def _float_tokens(values: list[float | None]) -> list[str] | None:
    """A column of numbers' JSON texts, as :data:`_HASHED_JSON` writes them (``repr``), written by orjson.

    orjson writes the same shortest digits as ``repr`` (both round-trip
    exactly, and pick the nearest of the shortest), over ten times faster;
    only its exponent form differs (``1e-7`` for ``1e-07``, and no exponent
    under 1e-4), so numbers written with one, or that small, are written by
    ``repr``. None for a column with NaN or an infinity (orjson's ``null``).
    """
    text = orjson.dumps(values).decode()
    if text.count("null") != values.count(None):
        return None
    tokens = text[1:-1].split(",")
    if "e" in text or "0.0000" in text:
        tokens = [
            _HASHED_JSON.encode(v) if "e" in t or "0.0000" in t else t for t, v in zip(tokens, values, strict=True)
        ]
    return tokens
