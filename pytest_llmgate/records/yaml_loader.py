"""Safe YAML loading with the C loader where present, duplicate-key errors and line look-up.

Anchors and aliases (``&a`` / ``*a``) are refused in every file the gate reads (suites, manifests and candidate
artifacts): none of them needs one, and an alias lets a file of a few hundred bytes stand for a value of billions
of nodes (the "billion laughs" bomb) that hashing or validating would never finish. They are found in the composed
node tree, where an alias is the same node met twice, before any value is constructed.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import msgspec
import yaml

from pytest_llmgate.model.errors import LlmgateError
from pytest_llmgate.records.codec import read_bytes

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """What the loader refuses while it builds a value (a duplicate key, an integer too long), and its line."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line


class _Loader(_BaseLoader):
    """A safe loader that keeps dates as strings (JSON has none), refuses duplicate keys and says which line holds
    an integer too long for Python to read."""

    yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != _TIMESTAMP]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable: the base constructor reports it
            if first is not None:
                raise _Refused(line, f"duplicate key {key!r} (first defined on line {first})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # more digits than int() reads (sys.get_int_max_str_digits, 4300 by default)
            digits = sum(character.isdigit() for character in node.value)
            raise _Refused(node.start_mark.line + 1, f"an integer of {digits} digits is more than Python reads; "
                                                     "quote it to keep it as text") from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


class Document(msgspec.Struct, frozen=True):
    """A parsed YAML file: its data, and its node tree for finding the line of any value."""

    path: Path
    data: Any
    root: yaml.Node | None

    def line_of(self, location: Sequence[str | int]) -> int | None:
        """The 1-based line of the value at ``location`` (keys and indexes), or of its nearest parent."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in location:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if key_node.value == part:
                        line = key_node.start_mark.line + 1
                        node = value_node
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line


def _has_alias(root: yaml.Node) -> bool:
    """Whether the tree below ``root`` holds an alias: the node its anchor names, met a second time.

    The walk visits each node once, however many times aliases repeat it.
    """
    seen: set[int] = set()
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(chain.from_iterable(node.value))  # each key node, then its value node
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return False


def _alias_problem(raw: bytes) -> tuple[int | None, str]:
    """The line of the first alias in ``raw`` and what to say of it (read from the parser's events: no values built)."""
    anchors: dict[str, int] = {}
    for event in yaml.parse(raw, Loader=_BaseLoader):
        anchor = getattr(event, "anchor", None)
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent):
            where = f", of the anchor on line {anchors[anchor]}" if anchor in anchors else ""
            return line, f"YAML alias *{anchor}{where}: aliases are not allowed; write the value out"
        if anchor is not None and line is not None:
            anchors.setdefault(anchor, line)
    return None, "YAML aliases are not allowed; write the value out"


def load_yaml(path: Path, error: type[LlmgateError]) -> Document:
    """Parse ``path`` safely; any problem is raised as ``error`` naming the file and line."""
    raw = read_bytes(path, error)
    loader = _Loader(raw)
    try:
        root = loader.get_single_node()
        if root is not None and _has_alias(root):
            raise error(path, *_alias_problem(raw))
        data = loader.construct_document(root) if root is not None else None
    except _Refused as exc:
        raise error(path, exc.line, str(exc)) from None
    except yaml.reader.ReaderError as exc:
        at = raw.count(b"\n", 0, exc.position) + 1
        if isinstance(exc.character, bytes) or "UTF-8" in exc.reason:
            raise error(path, at, f"is not UTF-8 text ({exc.reason})") from None
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise error(path, at, f"character {character!r} is not allowed in YAML ({exc.reason})") from None
    except RecursionError:
        raise error(path, None, "YAML nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise error(path, line, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise error(path, None, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return Document(path=path, data=data, root=root)
