"""Check a loaded YAML value against a declared format (`schema`, JSON Schema data) with the
`jsonschema` library, and say each departure as a person reads it: the field path, what was
expected, the offending value.

Only the wording is ours. A value of the wrong type is one problem, never also the problems of
what it holds; an `either` (oneOf) is judged by the alternative whose type the value has. Both
SignerPolicy (`build`) and PolicyTest (`webhook.authoring.suite`) files go through here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend

from webhook.policy.schema import DURATION, STRING, Schema, parse_duration
from webhook.policy.source import PathKey

ShapeProblem = tuple[PathKey, str, bool]  # path, message, whether the value is unusable

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
}
_DURATION_NAME = "a duration (e.g. 90s, 10m, 24h, 1h30m, 30d) or whole seconds"
_STRINGS = [STRING, {"type": "array", "items": STRING}]

# YAML tells 1.0 from 1, and the builder needs an int: a float is no integer here, whatever
# JSON Schema's number model says (so `maxItems: 1.0` is refused, not silently dropped).
_Validator = extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)
_VALIDATORS: dict[int, tuple[Schema, Validator]] = {}


def _validator(root: Schema) -> Validator:
    if id(root) not in _VALIDATORS:
        _VALIDATORS[id(root)] = (root, _Validator(root))
    return _VALIDATORS[id(root)][1]


def shape_problems(root: Schema, value: object) -> list[ShapeProblem]:
    """Every departure of `value` from `root`, in document order, each flagged when it makes
    the value unusable (a wrong type, an unknown enum value, a malformed duration) rather than
    being about an otherwise usable value (a bound, a missing or unknown field)."""
    translated: list[ShapeProblem] = []
    missing_reported: set[PathKey] = set()
    document: Any = value  # any YAML value; jsonschema's stubs want JSON types
    for error in _validator(root).iter_errors(document):
        translated.extend(_translate(error, missing_reported))
    if not translated:
        return []
    unusable = {path for path, _, wrong in translated if wrong}
    # A bound of a value of the wrong type (`minimum` of a float) is a knock-on of its type.
    kept = [p for p in translated if p[2] or p[0] not in unusable]
    order = _document_order(value)
    return sorted(kept, key=lambda problem: order.get(problem[0], len(order)))


def validate_shape(root: Schema, value: object) -> Iterator[tuple[PathKey, str]]:
    """(path, message) for every departure of `value` from `root`."""
    for path, message, _unusable in shape_problems(root, value):
        yield path, message


def _translate(error: ValidationError, missing_reported: set[PathKey]) -> list[ShapeProblem]:
    path: PathKey = tuple(error.absolute_path)
    keyword, expected, value = (
        str(error.validator),
        _any(error.validator_value),
        _any(error.instance),
    )
    if keyword == "type":
        return [(path, f"must be {_TYPE_NAMES[str(expected)]}, got {describe(value)}", True)]
    if keyword == "enum":
        allowed = ", ".join(repr(choice) for choice in expected)
        return [(path, f"must be one of {allowed}, got {value!r}", True)]
    if keyword == "required":
        # jsonschema reports each missing field apart, with only its message to tell which.
        if path in missing_reported:
            return []
        missing_reported.add(path)
        return [
            (path, f"missing required field {name!r}", False)
            for name in expected
            if name not in value
        ]
    if keyword == "additionalProperties":
        known = _any(error.schema)["properties"]
        listed = ", ".join(known)
        return [
            ((*path, key), f"unknown field {key!r} (known: {listed})", False)
            for key in value
            if key not in known
        ]
    if keyword == "minimum":
        return [(path, f"must be at least {expected}, got {value}", False)]
    if keyword == "maximum":
        return [(path, f"must be at most {expected}, got {value}", False)]
    if keyword == "minItems":
        return [(path, f"must have at least {expected} item(s)", False)]
    if keyword == "oneOf":
        return _either(error, path, missing_reported)
    if keyword == "anyOf" and all(set(a) == {"required"} for a in expected):
        # `spec` needs `rules`, `podCertificates` or both: one problem naming the choice.
        names = " or ".join(repr(name) for a in expected for name in a["required"])
        return [(path, f"missing required field: at least one of {names}", False)]
    return [(path, str(error.message), False)]


def _either(
    error: ValidationError, path: PathKey, missing_reported: set[PathKey]
) -> list[ShapeProblem]:
    """A oneOf none of whose alternatives took the value: judge it by the first alternative of
    the value's type, or say which types would do."""
    alternatives: list[Schema] = _any(error.validator_value)
    by_alternative: dict[int, list[ValidationError]] = {i: [] for i in range(len(alternatives))}
    for sub in error.context or ():
        by_alternative[int(sub.relative_schema_path[0])].append(sub)
    fitting = [
        errors
        for errors in by_alternative.values()
        if not any(
            e.validator in ("type", "enum") and tuple(e.absolute_path) == path for e in errors
        )
    ]
    value = error.instance
    if alternatives == list(DURATION):
        if fitting:  # the right type, the wrong text or sign: say what parse_duration says
            try:
                parse_duration(value)
            except ValueError as exc:
                return [(path, str(exc), True)]
        return [(path, f"must be {_DURATION_NAME}, got {describe(value)}", True)]
    if fitting:
        return [problem for sub in fitting[0] for problem in _translate(sub, missing_reported)]
    return [(path, f"must be {_names(alternatives)}, got {describe(value)}", True)]


def _any(value: object) -> Any:
    """jsonschema's error attributes, typed by its stubs as possibly unset: set on every error
    `iter_errors` yields."""
    return value


def _names(alternatives: list[Schema]) -> str:
    if alternatives == _STRINGS:
        return "a string or a list of strings"
    names = [
        " or ".join(repr(c) for c in alternative["enum"])
        if "enum" in alternative
        else _TYPE_NAMES[alternative["type"]]
        for alternative in alternatives
    ]
    return " or ".join(names)


def _document_order(value: object) -> dict[PathKey, int]:
    """Each path of `value` and its place in a depth-first walk (the order of the file)."""
    order: dict[PathKey, int] = {}
    stack: list[tuple[PathKey, Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        order[path] = len(order)
        if isinstance(node, dict):
            stack.extend(((*path, key), item) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*path, index), item) for index, item in reversed(list(enumerate(node))))
    return order


def describe(value: object) -> str:
    """A value's type, and the value itself when it is a scalar, for "got ..."."""
    if value is None:
        return "null (empty value)"
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", int: "an integer"}.get(
        type(value), type(value).__name__
    )
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return f"{kind} {value!r}" if not isinstance(value, str) else f"string {value!r}"
    return kind
