"""An exact fast validator for the JSON Schema keywords our schemas use; jsonschema decides everything else.

``compile_schema(schema)`` returns a function of an instance that answers ``VALID``, ``INVALID`` or ``UNKNOWN``.
Both definite answers are exact: ``VALID`` only when every keyword it met holds as jsonschema (Draft 2020-12) would
judge it, ``INVALID`` only when one surely fails. A keyword it does not know, a ``$ref`` it cannot follow, a value of
a type that ``json`` and safe YAML do not produce, or a case where jsonschema's equality or integer rules differ
from Python's (``1.0`` as an integer, ``1 == 1.0`` in an enum) answer ``UNKNOWN``. Callers validate with jsonschema
on anything but ``VALID``: for the line-numbered error, or for the answer this module could not give.
This module imports no jsonschema (that import is most of what a replayed session would otherwise pay).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

Verdict = Literal["valid", "invalid", "unknown"]
VALID: Final = "valid"
INVALID: Final = "invalid"
UNKNOWN: Final = "unknown"

Check = Callable[[Any], Verdict]

#: Keywords that never constrain an instance.
_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment", "$schema", "$id", "deprecated",
                          "readOnly", "writeOnly"})
#: The exact Python types of JSON values as ``json`` and safe YAML give them; anything else is UNKNOWN.
_JSON_TYPES = (dict, list, str, int, float, bool, type(None))
_SCALARS = (str, bool, type(None))


def _unknown(instance: Any) -> Verdict:
    return UNKNOWN


def _all(results: list[Verdict]) -> Verdict:
    if INVALID in results:
        return INVALID
    return UNKNOWN if UNKNOWN in results else VALID


def _type_check(name: str) -> Check:
    def check(value: Any) -> Verdict:
        kind = type(value)
        if kind not in _JSON_TYPES:
            return UNKNOWN
        if name == "integer":
            if kind is int:
                return VALID
            return UNKNOWN if kind is float and value.is_integer() else INVALID  # jsonschema takes 1.0 as integer
        if name == "number":
            return VALID if kind is int or kind is float else INVALID
        expected = {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}.get(name)
        if expected is None:
            return UNKNOWN
        return VALID if kind is expected else INVALID

    return check


def _member_check(members: list[Any]) -> Check:
    exact = [(type(member), member) for member in members]

    def check(value: Any) -> Verdict:
        kind = type(value)
        if kind is dict or kind is list:
            return UNKNOWN  # jsonschema compares containers item by item, telling True from 1: not Python's ==
        if any(kind is member_kind and value == member for member_kind, member in exact):
            return VALID
        # A string, a boolean or null equals (as jsonschema compares) only a member of its own type.
        return INVALID if kind in _SCALARS else UNKNOWN

    return check


class _Compiler:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, target: Any) -> Check:
        if not isinstance(target, str) or not target.startswith("#/$defs/"):
            return _unknown
        name = target[len("#/$defs/"):]
        if "/" in name or "~" in name or "%" in name:
            return _unknown
        if target not in self.refs:
            defs = self.root.get("$defs", {}) if isinstance(self.root, Mapping) else {}
            if name not in defs:
                return _unknown
            self.refs[target] = _unknown  # a recursive reference compiles to a call through the table
            compiled = self.compile(defs[name])
            self.refs[target] = compiled
        refs = self.refs
        return lambda value: refs[target](value)

    def compile(self, schema: Any) -> Check:  # noqa: C901 - one branch per keyword reads best
        if schema is True:
            return lambda value: VALID
        if schema is False:
            return lambda value: INVALID
        if not isinstance(schema, Mapping):
            return _unknown
        checks: list[Check] = []
        for keyword, argument in schema.items():
            if keyword in _ANNOTATIONS or keyword == "$defs" or keyword.startswith("x-"):
                continue
            checks.append(self.keyword(keyword, argument, schema))
        if not checks:
            return lambda value: VALID if type(value) in _JSON_TYPES else UNKNOWN
        if len(checks) == 1:
            return checks[0]
        return lambda value: _all([check(value) for check in checks])

    def keyword(self, keyword: str, argument: Any, schema: Mapping[str, Any]) -> Check:  # noqa: C901, PLR0911, PLR0912
        if keyword == "type":
            names = [argument] if isinstance(argument, str) else argument
            if not isinstance(names, list) or not names:
                return _unknown
            tests = [_type_check(name) for name in names]

            def any_type(value: Any) -> Verdict:
                results = [test(value) for test in tests]
                return VALID if VALID in results else (UNKNOWN if UNKNOWN in results else INVALID)

            return tests[0] if len(tests) == 1 else any_type
        if keyword == "enum":
            return _member_check(list(argument)) if isinstance(argument, list) else _unknown
        if keyword == "const":
            return _member_check([argument])
        if keyword in ("minLength", "maxLength"):
            if type(argument) is not int:
                return _unknown
            bound = argument
            low = keyword == "minLength"
            return lambda value: (VALID if type(value) is not str or (len(value) >= bound if low else len(value) <= bound)
                                  else INVALID)
        if keyword == "pattern":
            try:
                search = re.compile(argument).search  # jsonschema matches patterns with re.search too
            except (re.error, TypeError):
                return _unknown
            return lambda value: VALID if type(value) is not str or search(value) is not None else INVALID
        if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if type(argument) not in (int, float):
                return _unknown
            limit = argument
            fails: Callable[[Any], bool] = {
                "minimum": lambda value: value < limit, "maximum": lambda value: value > limit,
                "exclusiveMinimum": lambda value: value <= limit, "exclusiveMaximum": lambda value: value >= limit,
            }[keyword]
            return lambda value: VALID if type(value) not in (int, float) or not fails(value) else INVALID
        if keyword in ("minItems", "maxItems", "minProperties"):
            if type(argument) is not int:
                return _unknown
            count = argument
            kind: type[Any] = dict if keyword == "minProperties" else list
            at_least = keyword != "maxItems"
            return lambda value: (VALID if type(value) is not kind or (len(value) >= count if at_least
                                                                       else len(value) <= count) else INVALID)
        if keyword == "items":
            if "prefixItems" in schema:
                return _unknown
            each = self.compile(argument)
            return lambda value: VALID if type(value) is not list else _all([each(item) for item in value])
        if keyword == "required":
            if not isinstance(argument, list):
                return _unknown
            names = list(argument)
            return lambda value: VALID if type(value) is not dict or all(name in value for name in names) else INVALID
        if keyword == "properties":
            if not isinstance(argument, Mapping):
                return _unknown
            properties = {name: self.compile(sub) for name, sub in argument.items()}
            return lambda value: VALID if type(value) is not dict else _all(
                [properties[name](item) for name, item in value.items() if name in properties])
        if keyword == "propertyNames":
            names_check = self.compile(argument)
            return lambda value: VALID if type(value) is not dict else _all([names_check(name) for name in value])
        if keyword == "additionalProperties":
            if "patternProperties" in schema:
                return _unknown
            known = frozenset(schema.get("properties", {}))
            rest = self.compile(argument)
            return lambda value: VALID if type(value) is not dict else _all(
                [rest(item) for name, item in value.items() if name not in known])
        if keyword in ("anyOf", "oneOf"):
            if not isinstance(argument, list) or not argument:
                return _unknown
            branches = [self.compile(sub) for sub in argument]
            if keyword == "anyOf":
                def any_of(value: Any) -> Verdict:
                    results = [branch(value) for branch in branches]
                    return VALID if VALID in results else (UNKNOWN if UNKNOWN in results else INVALID)

                return any_of

            def one_of(value: Any) -> Verdict:
                results = [branch(value) for branch in branches]
                if results.count(VALID) > 1:
                    return INVALID
                if UNKNOWN in results:
                    return UNKNOWN
                return VALID if results.count(VALID) == 1 else INVALID

            return one_of
        if keyword == "not":
            inner = self.compile(argument)
            flip: dict[Verdict, Verdict] = {VALID: INVALID, INVALID: VALID, UNKNOWN: UNKNOWN}
            return lambda value: flip[inner(value)]
        if keyword == "$ref":
            return self.ref(argument)
        return _unknown  # a keyword this module does not know: jsonschema decides


def plain_json(instance: Any) -> bool:
    """Whether ``instance`` is made only of the exact types ``json`` and safe YAML give (string keys included)."""
    kind = type(instance)
    if kind is dict:
        return all(type(key) is str and plain_json(item) for key, item in instance.items())
    if kind is list:
        return all(plain_json(item) for item in instance)
    return kind in _JSON_TYPES


def compile_schema(schema: Any, root: Any = None) -> Check:
    """The fast check for ``schema``; ``root`` holds the ``$defs`` its ``$ref`` point into (default: itself).

    An instance holding anything but plain JSON values (a date from YAML, a non-string key) is UNKNOWN."""
    check = _Compiler(schema if root is None else root).compile(schema)
    return lambda instance: check(instance) if plain_json(instance) else UNKNOWN
