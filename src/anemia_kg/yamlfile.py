"""Read a human-edited YAML file so that every record remembers its line.

Curators edit ``data/entities.yaml`` and ``data/claims.yaml`` by hand; when the build rejects something it
must say *where*. PyYAML forgets positions once it builds Python objects, so this loader records, for each
mapping, the line it starts on (``__line__``) and the line of each key (``__lines__``). It also refuses
duplicate keys, which PyYAML would otherwise resolve silently by keeping the last one.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from .model import Problem

LINE = "__line__"
LINES = "__lines__"


class YamlError(Exception):
    """A YAML file that cannot be read; ``problems`` name the file and line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that annotates mappings with line numbers and rejects duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    lines: dict[Hashable, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):  # "? [a]": a list or mapping as a key
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, "a key must be a plain value, not a list or mapping",
                key_node.start_mark)
        if key in lines:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"duplicate key {key!r} (first on line {lines[key]}); remove one of them", key_node.start_mark,
            )
        lines[key] = key_node.start_mark.line + 1
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    mapping[LINE] = node.start_mark.line + 1
    mapping[LINES] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _syntax_problem(name: str, exc: yaml.MarkedYAMLError) -> Problem:
    """The line to fix for a YAML syntax error, and what is wrong there.

    PyYAML marks where it gave up (``problem_mark``). For a token or a bracket left open (a key without its colon,
    ``[`` without ``]``, a quote that runs to the end of the file) that is a later line, often the next one, and
    the line to fix is where the token or bracket began (``context_mark``); the message then names both. (A
    quote left open that a later quote closes is only noticed as what follows that one.) Otherwise (a stray
    ``: `` in a value, an indentation that ends a block) the problem's own line is the one.
    """
    context, problem = exc.context_mark, exc.problem_mark
    opened = context is not None and (exc.context or "").startswith(("while scanning", "while parsing a flow"))
    mark = context if opened else (problem or context)
    what = " ".join(x for x in (exc.context, exc.problem) if x)
    if opened and problem is not None and context is not None and problem.line != context.line:
        what += f" (on line {problem.line + 1})"
    return Problem(name, mark.line + 1 if mark else 0, f"YAML syntax error: {what}")


def load_yaml(path: Path, label: str | None = None) -> Any:
    """Parse ``path``; a missing file or a syntax error becomes a YamlError naming file and line."""
    name = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlError([Problem(name, 0, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlError([Problem(name, 0, f"cannot read the file: {exc}")]) from None
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise YamlError([_syntax_problem(name, exc)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, most control characters)
        line = text.count("\n", 0, max(0, exc.position)) + 1
        code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
        raise YamlError([Problem(name, line, f"character U+{code:04X} is not allowed in YAML; remove it")]) from None
    except yaml.YAMLError as exc:
        raise YamlError([Problem(name, 0, f"YAML error: {exc}")]) from None
    except RecursionError:  # PyYAML reads nested lists and mappings recursively, one Python frame per level
        raise YamlError([Problem(name, 1, "lists or mappings are nested too deeply to read (hundreds of "
                                          "levels); the data files need two or three")]) from None


def line_of(record: dict[str, Any], key: str | None = None) -> int:
    """The line of ``key`` in ``record`` (or of the record itself)."""
    if key is not None and key in record.get(LINES, {}):
        return int(record[LINES][key])
    return int(record.get(LINE, 0))


def strip_lines(value: Any) -> Any:
    """A copy of ``value`` without the line annotations, for validation by pydantic."""
    if isinstance(value, dict):
        return {k: strip_lines(v) for k, v in value.items() if k not in (LINE, LINES)}
    if isinstance(value, list):
        return [strip_lines(v) for v in value]
    return value
