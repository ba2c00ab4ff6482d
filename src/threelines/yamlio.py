"""Read YAML with the line of every value, so errors can say where they are.

Manifests and rule files come from outside. PyYAML's safe loader builds only
plain data; on top of it this module rejects duplicate keys (PyYAML silently
keeps the last) and records ``path -> line`` for every mapping key and list
item, where ``path`` is the tuple of keys and indexes leading to the value.

A document that checks clean against its schema is kept in the cache folder
(:func:`threelines.cachedir.cache_folder`) as plain JSON, its data and its
lines, named by a SHA-256 of the file's bytes, the schema, the package
version and :data:`CHECKED_FORMAT`: the next run reads it back without
parsing the YAML or importing the YAML and schema libraries. A document with
problems is never kept, so its messages come from the checks every time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threelines import __version__
from threelines.cachedir import cache_folder
from threelines.limits import MAX_YAML_BYTES, MAX_YAML_DEPTH

if TYPE_CHECKING:
    import yaml

log = logging.getLogger(__name__)

#: Bumped whenever what a checked-document entry holds, or how a document is read, changes.
CHECKED_FORMAT = 1

#: The cache folder's subfolder of checked documents.
CHECKED_DIR = "checked"


@dataclass
class Located:
    """A YAML document's data and the line (1-based) of each value in it."""

    data: Any
    path: Path
    lines: dict[tuple, int] = field(default_factory=dict)
    #: The SHA-256 naming the checked document (see :func:`load_checked`); None for a document read by :func:`load`.
    key: str | None = None

    def line(self, *keys: object) -> int:
        """Return the line of the value at ``keys``, or of its nearest parent."""
        keys_t = tuple(keys)
        while keys_t and keys_t not in self.lines:
            keys_t = keys_t[:-1]
        return self.lines.get(keys_t, 1)

    def where(self, *keys: object) -> str:
        """Return ``file:line`` for the value at ``keys``."""
        return f"{self.path}:{self.line(*keys)}"


class YAMLFormatError(ValueError):
    """The text is not YAML, or repeats a key; the message carries file:line."""


def load(path: str | Path) -> Located:
    """Parse a YAML file safely, with line numbers.

    Parameters
    ----------
    path : str or Path
        The file to read (UTF-8).

    Returns
    -------
    Located

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        If the file cannot be opened.
    YAMLFormatError
        If it is not valid YAML or a mapping repeats a key; the message
        starts with ``file:line:``.
    """
    import yaml

    path = Path(path)
    _check_regular(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YAMLFormatError(f"{path}:1: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    try:
        # Anchors and aliases are refused: expanding them is how a few bytes of
        # YAML become gigabytes (or an endless recursion), and rules need none.
        # Nesting is counted on the parser's events, which need no recursion,
        # before the composer (which recurses once per level) sees the text.
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1
                raise YAMLFormatError(f"{path}:{line}: aliases (*{event.anchor}) are not allowed; write the value out")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise YAMLFormatError(
                        f"{path}:{event.start_mark.line + 1}: lists and mappings are nested more than "
                        f"{MAX_YAML_DEPTH} deep (the limit); flatten the document"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise YAMLFormatError(f"{path}:{line}: not valid YAML: {problem}") from None
    located = Located(data=None, path=path)
    if node is not None:
        located.data = _build(node, (), located, yaml.SafeLoader(""))
    return located


def _check_regular(path: Path) -> None:
    """Refuse what is not a regular file (a FIFO would hang the read) or is too large to be a rule file.

    Raises
    ------
    YAMLFormatError
    """
    import stat

    try:
        info = path.stat()
    except OSError:
        return  # the read below says why, as every caller expects
    if stat.S_ISDIR(info.st_mode):
        return  # reading it raises IsADirectoryError, as callers expect
    if not stat.S_ISREG(info.st_mode):
        raise YAMLFormatError(f"{path}:1: not a regular file (a pipe, device or socket); give a file")
    if info.st_size > MAX_YAML_BYTES:
        raise YAMLFormatError(
            f"{path}:1: is {info.st_size:,} bytes; a rule file or manifest may be up to {MAX_YAML_BYTES:,} (the limit)"
        )


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _build(node: yaml.Node, keys: tuple, located: Located, loader: yaml.SafeLoader) -> Any:
    """Turn a composed node into plain data, recording lines as it goes."""
    import yaml

    line = node.start_mark.line + 1
    located.lines[keys] = line
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise YAMLFormatError(f"{located.path}:{line}: tag {tag} is not allowed; only plain YAML data is read")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, located, loader)
            if key in out:
                raise YAMLFormatError(
                    f"{located.path}:{key_node.start_mark.line + 1}: key {key!r} appears twice; keep one"
                )
            out[key] = _build(value_node, (*keys, key), located, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*keys, i), located, loader) for i, item in enumerate(node.value)]
    return _scalar(node, located, loader)


def _scalar(node: yaml.Node, located: Located, loader: yaml.SafeLoader) -> Any:
    """Build a scalar with the safe constructor (which refuses Python tags)."""
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        raise YAMLFormatError(f"{located.path}:{node.start_mark.line + 1}: a mapping key must be a plain value")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise YAMLFormatError(f"{located.path}:{node.start_mark.line + 1}: {problem}") from None


def load_checked(path: str | Path, schema_name: str, error: type[Exception], what: str) -> tuple[Located, list[str]]:
    """Read a YAML document and check it against a schema shipped with the package.

    Parameters
    ----------
    path : str or Path
    schema_name : str
        File name under ``threelines/schemas/``.
    error : exception class
        Raised, with a one-line message, when the file cannot be read or parsed.
    what : str
        How to name the file and its option in that message, e.g. ``"rule file (--rules)"``.

    Returns
    -------
    (Located, list of str)
        The document and one ``file:line: message`` per schema problem. A
        document that checked clean before, byte for byte, is read back from
        its kept entry (see the module's description).
    """
    path = Path(path)
    try:
        _check_regular(path)  # before reading: a FIFO would hang
        key = _checked_key(path.read_bytes(), schema_name)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except YAMLFormatError as exc:
        raise error(str(exc)) from None
    kept = _read_checked(key, path)
    if kept is not None:
        return kept, []
    try:
        doc = load(path)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except YAMLFormatError as exc:
        raise error(str(exc)) from None
    doc.key = key
    problems = [f"{path}:{line}: {message}" for line, message in schema_problems(doc, schema_name)]
    if not problems:
        _write_checked(doc)
    return doc, problems


def _schema_text(schema_name: str) -> str:
    from importlib import resources

    return (resources.files("threelines") / "schemas" / schema_name).read_text("utf-8")


def _checked_key(raw: bytes, schema_name: str) -> str:
    """The SHA-256 naming a checked document: its bytes, the schema, the package version and the entry format."""
    digest = hashlib.sha256(f"{CHECKED_FORMAT}\0{__version__}\0{schema_name}\0".encode())
    digest.update(_schema_text(schema_name).encode())
    digest.update(b"\0")
    digest.update(raw)
    return digest.hexdigest()


def _read_checked(key: str, path: Path) -> Located | None:
    """The document kept under ``key``, or None."""
    entry = read_kept(key, path)
    if entry is None:
        return None
    try:
        return Located(entry["data"], path, {tuple(keys): line for keys, line in entry["lines"]}, key)
    except (KeyError, TypeError, ValueError) as exc:
        log.info("%s: kept entry %s cannot be used (%s); checking the file again", path, key, exc)
        return None


def _write_checked(doc: Located) -> None:
    """Keep a document that checked clean, if JSON gives back exactly the same data and lines.

    A date, a non-text mapping key or a NaN would come back different (or not
    at all) from JSON: such a document is simply checked again each run.
    """
    entry = {"data": doc.data, "lines": [[list(keys), line] for keys, line in doc.lines.items()]}
    try:
        back = json.loads(json.dumps(entry, allow_nan=False))
    except (TypeError, ValueError):
        return  # not plain JSON data (a date, a NaN): nothing to keep
    if repr(back["data"]) == repr(doc.data) and repr(back["lines"]) == repr(entry["lines"]):
        keep(doc.key, entry, doc.path)


def read_kept(key: str, path: Path) -> Any:
    """The JSON entry kept under ``key`` in the cache folder, or None when there is none or it is damaged.

    Parameters
    ----------
    key : str
        The entry's name (a SHA-256 of everything it depends on).
    path : Path
        The file it was made from, for the notes: at ``-v`` on a damaged entry, at ``-vv`` on each one read back.
    """
    entry_path = cache_folder() / CHECKED_DIR / f"{key}.json"
    try:
        entry = json.loads(entry_path.read_bytes())
    except FileNotFoundError:
        return None
    except Exception as exc:  # any damage to an entry means: check the file again
        log.info("%s: kept entry %s cannot be used (%s); checking the file again", path, entry_path, exc)
        return None
    log.debug("%s: read back as checked from %s", path, entry_path)
    return entry


def keep(key: str, entry: Any, path: Path) -> None:
    """Write a JSON entry under ``key`` atomically; a cache that cannot be written is only noted (at ``-v``)."""
    folder = cache_folder() / CHECKED_DIR
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(entry, out, ensure_ascii=False)
        os.replace(tmp, folder / f"{key}.json")
    except (OSError, TypeError, ValueError) as exc:  # the cache only saves time: never fail a run over it
        log.info("%s: cannot keep what was checked (%s)", path, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def schema_problems(located: Located, schema_name: str) -> list[tuple[int, str]]:
    """Check a document against a JSON Schema shipped with the package.

    Parameters
    ----------
    located : Located
        The parsed document.
    schema_name : str
        File name under ``threelines/schemas/``.

    Returns
    -------
    list of (int, str)
        ``(line, message)`` for every problem, sorted by line; the message
        names the offending key path, e.g. ``rules[2].outcome: 'deny' is not
        one of ['reject', 'conditional']``.
    """
    import jsonschema

    schema = json.loads(_schema_text(schema_name))
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in validator.iter_errors(located.data):
        if error.context:  # oneOf/anyOf: the alternative of the right type says more than "not valid under any"
            fitting = [e for e in error.context if e.validator != "type"]
            error = jsonschema.exceptions.best_match(fitting or error.context)
        keys = tuple(error.absolute_path)
        problems.append((located.line(*keys), f"{_dotted(keys) or 'top level'}: {error.message}"))
    return sorted(problems)


def _dotted(keys: tuple) -> str:
    """Render a key path as ``rules[2].outcome``."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out
