"""The shape of a SignerPolicy document, declared once.

The same declaration validates loaded YAML (unknown keys, types, required fields, enums) and
renders the JSON Schema that editors use, so the two cannot drift apart. Semantic checks
(patterns, CIDRs, durations, cross-references) live in `loader`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from webhook.limits import MAX_SANS_PER_KIND, MAX_SUBJECT_ATTRIBUTES
from webhook.sankinds import SAN_KINDS

API_VERSION = "policy.csr-webhook.io/v1alpha1"

SUBJECT_ATTRIBUTES = (
    "commonName",
    "organization",
    "organizationalUnit",
    "country",
    "locality",
    "province",
    "streetAddress",
    "postalCode",
    "serialNumber",
)

# staging/src/k8s.io/api/certificates/v1/types.go :: KeyUsage (the 23 known usages)
KNOWN_USAGES = (
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
)

ECDSA_CURVES = ("P-256", "P-384", "P-521")


@dataclass(frozen=True, slots=True)
class Shape:
    """A node of the declared document shape."""

    kind: str  # object | array | string | strings | boolean | integer | duration | enum | either
    description: str = ""
    fields: Mapping[str, Shape] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    items: Shape | None = None
    min_items: int = 0
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    default: object = None
    alternatives: tuple[Shape, ...] = ()


def obj(
    fields: Mapping[str, Shape], description: str = "", required: tuple[str, ...] = ()
) -> Shape:
    return Shape("object", description, dict(fields), required)


def array(items: Shape, description: str = "", min_items: int = 0) -> Shape:
    return Shape("array", description, items=items, min_items=min_items)


def string(description: str = "") -> Shape:
    return Shape("string", description)


def strings(description: str = "") -> Shape:
    """A string, or a list of strings (a shorthand authors expect for one value)."""
    return Shape("strings", description)


def boolean(description: str = "", default: bool = False) -> Shape:
    return Shape("boolean", description, default=default)


def integer(description: str = "", minimum: int | None = None, maximum: int | None = None) -> Shape:
    return Shape("integer", description, minimum=minimum, maximum=maximum)


def duration(description: str = "") -> Shape:
    return Shape("duration", description)


def enum(*choices: str, description: str = "", default: str | None = None) -> Shape:
    return Shape("enum", description, choices=choices, default=default)


def either(*alternatives: Shape, description: str = "") -> Shape:
    """A value of one of the alternatives, none of them an object of required fields that an
    alternative of another type could also satisfy (`patch: none` or `patch: {...}`)."""
    return Shape("either", description, alternatives=alternatives)


def _values(description: str, ceiling: int, wildcard: bool = False) -> Shape:
    fields = {
        "values": array(string(), "patterns; every occurrence must match one"),
        "required": boolean("at least one occurrence must be present"),
        "maxItems": integer("at most this many occurrences", minimum=1, maximum=ceiling),
    }
    if wildcard:
        fields["allowWildcardNames"] = boolean("permit a requested `*` left-most label")
    return obj(fields, description)


_PATTERNS = array(string())
_SUBJECTS = obj(
    {"users": _PATTERNS, "groups": _PATTERNS, "serviceAccounts": _PATTERNS},
    "who: username patterns, group patterns, service accounts (namespace/name)",
)
_LIFETIME = obj(
    {
        "min": duration(),
        "max": duration(),
        "default": duration(),
        "onExceed": enum("Deny", "Clamp", default="Deny"),
    }
)
_KEYS = obj(
    {
        "rsa": obj({"minBits": integer(minimum=1024), "maxBits": integer(minimum=1024)}),
        "ecdsa": obj({"curves": array(enum(*ECDSA_CURVES), min_items=1)}),
        "ed25519": boolean(),
        "ed448": boolean(),
    }
)
_ALLOWED = obj(
    {
        "subject": obj(
            {name: _values(name, MAX_SUBJECT_ATTRIBUTES) for name in SUBJECT_ATTRIBUTES}
        ),
        **{
            kind.key: _values(kind.description, MAX_SANS_PER_KIND, wildcard=kind.wildcards)
            for kind in SAN_KINDS
        },
        "usages": array(enum(*KNOWN_USAGES), "permitted spec.usages"),
        "isCA": boolean("permit CA certificates"),
        "extensions": array(string(), "extra extension OIDs permitted"),
    },
    "allow-list; anything not listed must be absent",
)
_CONSTRAINTS = obj(
    {
        "requiredUsages": array(enum(*KNOWN_USAGES)),
        "requireAnySAN": boolean(),
        "lifetime": _LIFETIME,
        "keys": _KEYS,
        "signatureAlgorithms": array(string(), min_items=1),
    }
)
_RULE = obj(
    {
        "name": string("unique within the policy"),
        "requesters": _SUBJECTS,
        "allowed": _ALLOWED,
        "constraints": _CONSTRAINTS,
    },
    required=("name",),
)
_DENY = obj(
    {
        **{kind.key: _PATTERNS for kind in SAN_KINDS},
        "subject": obj(dict.fromkeys(SUBJECT_ATTRIBUTES, _PATTERNS)),
    },
    "guardrails: any match denies",
)
_APPROVAL = obj(
    {
        "approvers": _SUBJECTS,
        "selfApproval": enum("Deny", "Allow", default="Deny"),
        "recheck": boolean(default=True),
    }
)
_ISSUANCE = obj(
    {
        "issuers": _SUBJECTS,
        "caBundle": string("PEM CA certificate(s)"),
        "caBundleFile": string("path to PEM CA certificate(s)"),
        "maxLifetime": duration(),
    }
)

SIGNER_POLICY = obj(
    {
        "apiVersion": enum(API_VERSION),
        "kind": enum("SignerPolicy"),
        "metadata": obj({"name": string("unique across all loaded policies")}, required=("name",)),
        "spec": obj(
            {
                "signerNames": array(string(), "exact signer names or patterns", min_items=1),
                "enforcement": enum("Deny", "Warn", "Audit", default="Deny"),
                "deny": _DENY,
                "rules": array(_RULE, min_items=1),
                "approval": _APPROVAL,
                "issuance": _ISSUANCE,
            },
            required=("signerNames", "rules"),
        ),
    },
    "A SignerPolicy document",
    required=("apiVersion", "kind", "metadata", "spec"),
)

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "strings": "a string or a list of strings",
    "boolean": "true or false",
    "integer": "an integer",
    "duration": "a duration (e.g. 90s, 10m, 24h, 1h30m, 30d) or whole seconds",
}


def _type_ok(shape: Shape, value: object) -> bool:
    if shape.kind == "either":
        return any(_type_ok(a, value) for a in shape.alternatives)
    checks: dict[str, Callable[[object], bool]] = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "strings": lambda v: (
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
        ),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "duration": lambda v: (
            isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
        ),
        "enum": lambda v: isinstance(v, str) and v in shape.choices,
    }
    return checks[shape.kind](value)


def validate_shape(
    shape: Shape, value: object, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (path, message) for every place the value departs from the shape."""
    for where, message, _wrong_type in shape_problems(shape, value, path):
        yield where, message


def shape_problems(
    shape: Shape, value: object, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
    """As `validate_shape`, flagging the problems that make the value unusable (a wrong type
    or an unknown enum value) apart from those about an otherwise usable value (a bound, a
    missing or unknown field)."""
    if not _type_ok(shape, value):
        if shape.kind == "either":
            yield path, f"must be {_either_names(shape)}, got {_describe(value)}", True
        elif shape.kind == "enum":
            allowed = ", ".join(repr(c) for c in shape.choices)
            yield path, f"must be one of {allowed}, got {value!r}", True
        else:
            yield path, f"must be {_TYPE_NAMES[shape.kind]}, got {_describe(value)}", True
        return
    if shape.kind == "either":
        chosen = next(a for a in shape.alternatives if _type_ok(a, value))
        yield from shape_problems(chosen, value, path)
        return
    if shape.kind == "integer":
        assert isinstance(value, int)
        if shape.minimum is not None and value < shape.minimum:
            yield path, f"must be at least {shape.minimum}, got {value}", False
        if shape.maximum is not None and value > shape.maximum:
            yield path, f"must be at most {shape.maximum}, got {value}", False
    if isinstance(value, list) and shape.items is not None:
        if len(value) < shape.min_items:
            yield path, f"must have at least {shape.min_items} item(s)", False
        for index, item in enumerate(value):
            yield from shape_problems(shape.items, item, (*path, index))
    if isinstance(value, dict):
        for name in shape.required:
            if name not in value:
                yield path, f"missing required field {name!r}", False
        for key, item in value.items():
            if key not in shape.fields:
                known = ", ".join(shape.fields)
                yield (*path, key), f"unknown field {key!r} (known: {known})", False
                continue
            yield from shape_problems(shape.fields[key], item, (*path, key))


def _either_names(shape: Shape) -> str:
    names = [
        " or ".join(repr(c) for c in a.choices) if a.kind == "enum" else _TYPE_NAMES[a.kind]
        for a in shape.alternatives
    ]
    return " or ".join(names)


def _describe(value: object) -> str:
    if value is None:
        return "null (empty value)"
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", int: "an integer"}.get(
        type(value), type(value).__name__
    )
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return f"{kind} {value!r}" if not isinstance(value, str) else f"string {value!r}"
    return kind


def to_json_schema(shape: Shape) -> dict[str, object]:
    """Render a shape as JSON Schema (draft 2020-12) fragments."""
    out: dict[str, object] = {}
    if shape.description:
        out["description"] = shape.description
    if shape.kind == "object":
        out["type"] = "object"
        out["additionalProperties"] = False
        out["properties"] = {k: to_json_schema(v) for k, v in shape.fields.items()}
        if shape.required:
            out["required"] = list(shape.required)
    elif shape.kind == "array":
        out["type"] = "array"
        assert shape.items is not None
        out["items"] = to_json_schema(shape.items)
        if shape.min_items:
            out["minItems"] = shape.min_items
    elif shape.kind == "enum":
        out["enum"] = list(shape.choices)
    elif shape.kind == "duration":
        out["oneOf"] = [
            {"type": "string", "pattern": r"^(([0-9]+(d|h|m|s))+|[0-9]+)$"},
            {"type": "integer", "minimum": 0},
        ]
    elif shape.kind == "either":
        out["oneOf"] = [to_json_schema(a) for a in shape.alternatives]
    elif shape.kind == "strings":
        out["oneOf"] = [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
    else:
        out["type"] = shape.kind
        if shape.minimum is not None:
            out["minimum"] = shape.minimum
        if shape.maximum is not None:
            out["maximum"] = shape.maximum
    if shape.default is not None:
        out["default"] = shape.default
    return out
