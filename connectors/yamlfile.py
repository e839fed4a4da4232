"""One bounded YAML loader for the study spec and the mapping file, with line numbers.

`load_yaml` reads a file and returns its data together with PyYAML's composed node tree, so
that an error about ``design.method`` can name the line it is on (`locate`). The input is
bounded before anything is built from it:

- size: at most `MAX_BYTES` bytes;
- no anchors or aliases (``&a`` / ``*a``): a few aliases nested in each other expand into
  gigabytes (the "billion laughs"); a spec or mapping never needs them;
- nesting: at most `MAX_DEPTH` levels of mappings/sequences (PyYAML's composer is recursive).

The checks run on PyYAML's event stream, which is produced without recursion, before the
node tree is composed. Messages quote values through `short`, never in full.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.errors import ConnectorError

MAX_BYTES = 1_000_000  # a spec or mapping is a few KB; a registry mapping with codes < 100 KB
MAX_DEPTH = 50  # nesting levels of mappings/sequences
MAX_SHOWN = 60  # characters of a value quoted in a message


class YamlFileError(ConnectorError):
    """A YAML file is unreadable, too large, too deep, uses aliases or is not valid YAML."""


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A loaded YAML file.

    Attributes
    ----------
    data : Any
        The constructed value (dicts, lists, scalars); None for an empty file.
    root : yaml.Node or None
        The composed node tree (positions of every key and item).
    path : Path
    sha256 : str
        SHA-256 of the file's bytes.
    """

    data: Any
    root: yaml.Node | None
    path: Path
    sha256: str

    def line(self, loc: Sequence[Any]) -> int | None:
        """1-based line of the element at ``loc`` (or of its deepest existing parent)."""
        node, _ = walk(self.root, tuple(loc))
        return None if node is None else node.start_mark.line + 1

    def locate(self, loc: Sequence[Any], msg: str, *, missing: bool = False) -> str:
        """``<file>:<line>: <yaml.path>: <msg>`` for a pydantic-style ``loc``."""
        return locate(self.path, self.root, tuple(loc), msg, missing=missing)


def short(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages never print unbounded values."""
    if isinstance(value, dict | list | tuple | set) and len(value) > 20:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_yaml(path: str | Path, *, what: str = "YAML file",
              max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> YamlDocument:
    """Read, bound-check and parse a YAML file (see the module docstring).

    Parameters
    ----------
    path : str or Path
    what : str
        What the file is, for messages ("study spec", "mapping file").
    max_bytes, max_depth : int
        The bounds.

    Raises
    ------
    YamlFileError
        Naming the file, the line and the rule broken.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise YamlFileError(
                f"{what} {path}: {size:,} bytes, more than the {max_bytes:,} bytes allowed"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlFileError(f"{what} {path}: cannot be read ({exc.strerror})") from None
    if len(raw) > max_bytes:  # grew between stat and read
        raise YamlFileError(f"{what} {path}: more than the {max_bytes:,} bytes allowed")
    text = raw.decode("utf-8", errors="replace")
    try:
        _check_events(text, path, what, max_depth)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise YamlFileError(f"{path}{where}: {what} is not valid YAML ({short(problem, 120)})"
                            ) from None
    return YamlDocument(data, root, path, hashlib.sha256(raw).hexdigest())


def _check_events(text: str, path: Path, what: str, max_depth: int) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlFileError(
                f"{path}:{line}: {what} uses a YAML anchor or alias (&name / *name); they are "
                "not allowed (write the value out where it is needed)"
            )
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > max_depth:
                raise YamlFileError(
                    f"{path}:{line}: {what} is nested more than {max_depth} levels deep"
                )
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def locate(path: Path | str, root: yaml.Node | None, loc: tuple, msg: str, *,
           missing: bool = False) -> str:
    """``<file>:<line>: <yaml.path>: <msg>`` for a pydantic-style ``loc``."""
    node, found = walk(root, loc)
    shown = list(found)
    if missing and len(found) < len(loc):
        shown.append(loc[len(found)])
    dotted = dotted_path(shown) or "(top level)"
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    return f"  {Path(path).name}{line}: {dotted}: {msg}"


def walk(root: yaml.Node | None, loc: tuple, aliases: dict[str, str] | None = None
         ) -> tuple[yaml.Node | None, tuple]:
    """Follow ``loc`` down the node tree.

    Returns the node whose line to report (the key of the deepest mapping entry reached, or
    the deepest sequence item) and the part of ``loc`` that was found.
    """
    aliases = {"schema_": "schema"} if aliases is None else aliases
    node, mark_node, used = root, root, ()
    for part in loc:
        key = aliases.get(part, part) if isinstance(part, str) else part
        found = _child(node, key)
        if found is None:
            break
        mark_node, node = found
        used = (*used, key)
    return mark_node, used


def _child(node: yaml.Node | None, key: Any) -> tuple[yaml.Node, yaml.Node] | None:
    """(node to report, node to descend into) of ``key`` in a mapping or sequence node."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key or (not isinstance(key, str) and k.value == str(key)):
                return k, v
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key], node.value[key]
    return None


def dotted_path(parts: Sequence[Any]) -> str:
    """``design.exact[0]`` from ``("design", "exact", 0)``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out
