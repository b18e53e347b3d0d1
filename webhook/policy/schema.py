"""The SignerPolicy format, declared once as JSON Schema data with its defaults.

`csr-webhook schema` prints it for editors, `validation` checks loaded YAML against it (unknown
keys, types, required fields, enums, bounds) and `build` reads the default of every absent
field from it, so the three cannot drift apart. Meaning no schema can state (patterns, CIDRs,
duration bounds, cross-references) is `build`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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

# staging/src/k8s.io/api/core/v1/types.go :: NodeAddressType (Node.status.addresses[].type)
NODE_ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")
# `maxPending`: more pending CSRs than this per requester and signer is no quota, it is none.
MAX_PENDING = 100


# The declaration is JSON Schema (draft 2020-12, keywords that mean the same in draft-07, which
# yaml-language-server implements); these helpers only spare retyping its boilerplate.
Schema = dict[str, Any]
DURATION_PATTERN = r"^(([0-9]+(d|h|m|s))+|[0-9]+)$"
_DURATION = re.compile(r"(\d+)(d|h|m|s)")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _node(description: str, body: Schema, default: object = None) -> Schema:
    out: Schema = {"description": description} if description else {}
    out.update(body)
    if default is not None:
        out["default"] = default
    return out


def obj(
    fields: Mapping[str, Schema],
    description: str = "",
    required: tuple[str, ...] = (),
    default: Mapping[str, object] | None = None,
) -> Schema:
    body: Schema = {"type": "object", "additionalProperties": False, "properties": dict(fields)}
    if required:
        body["required"] = list(required)
    return _node(description, body, None if default is None else dict(default))


def array(
    items: Schema, description: str = "", min_items: int = 0, default: list[object] | None = None
) -> Schema:
    body: Schema = {"type": "array", "items": items}
    if min_items:
        body["minItems"] = min_items
    return _node(description, body, default)


def string(description: str = "") -> Schema:
    return _node(description, {"type": "string"})


def strings(description: str = "") -> Schema:
    """A string, or a list of strings (a shorthand authors expect for one value)."""
    return _node(description, {"oneOf": [STRING, {"type": "array", "items": STRING}]})


def boolean(description: str = "", default: bool = False) -> Schema:
    return _node(description, {"type": "boolean"}, default)


def integer(
    description: str = "",
    minimum: int | None = None,
    maximum: int | None = None,
    default: int | None = None,
) -> Schema:
    body: Schema = {"type": "integer"}
    if minimum is not None:
        body["minimum"] = minimum
    if maximum is not None:
        body["maximum"] = maximum
    return _node(description, body, default)


def duration(description: str = "") -> Schema:
    """Go-style `1h30m`, days `30d`, or whole seconds (`parse_duration`)."""
    return _node(description, {"oneOf": [dict(alternative) for alternative in DURATION]})


def enum(*choices: str, description: str = "", default: str | None = None) -> Schema:
    return _node(description, {"enum": list(choices)}, default)


def either(*alternatives: Schema, description: str = "") -> Schema:
    """A value of one of the alternatives, none of them an object of required fields that an
    alternative of another type could also satisfy (`patch: none` or `patch: {...}`)."""
    return _node(description, {"oneOf": list(alternatives)})


def parse_duration(value: object) -> int:
    """Go-style `1h30m`, days `30d`, or whole seconds; raises ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"duration {value} is negative")
        return value
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a duration")
    text = value.strip()
    if text.isdigit():
        return int(text)
    position, total = 0, 0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(
            f"{value!r} is not a duration (use e.g. 90s, 10m, 24h, 1h30m, 30d or whole seconds)"
        )
    return total


STRING: Schema = {"type": "string"}
DURATION: tuple[Schema, ...] = (
    {"type": "string", "pattern": DURATION_PATTERN},
    {"type": "integer", "minimum": 0},
)


def _values(description: str, ceiling: int, wildcard: bool = False) -> Schema:
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
        "rsa": obj(
            {
                "minBits": integer(minimum=1024, default=2048),
                "maxBits": integer(minimum=1024, default=8192),
            }
        ),
        "ecdsa": obj(
            {"curves": array(enum(*ECDSA_CURVES), min_items=1, default=list(ECDSA_CURVES))}
        ),
        "ed25519": boolean(),
        "ed448": boolean(),
    },
    "when given, only the listed key types are accepted",
    # Absent, the key types a Kubernetes client generates; the numbers are rsa's and ecdsa's.
    default={"rsa": {}, "ecdsa": {}, "ed25519": True},
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
_NODE = obj(
    {
        "mustExist": boolean("a Node named ${node} must exist", default=True),
        "sansFromAddresses": array(
            enum(*NODE_ADDRESS_TYPES),
            "every DNS and IP SAN must be one of the Node's addresses of these types",
            min_items=1,
        ),
        "sharedAddresses": enum(
            "Deny",
            "Allow",
            description="Deny: a SAN that is an address of another Node too is refused",
            default="Deny",
        ),
    },
    "bind the CSR to the requesting Node (the requester must be system:node:<name>)",
)
_CONSTRAINTS = obj(
    {
        "requiredUsages": array(enum(*KNOWN_USAGES)),
        "requireAnySAN": boolean(),
        "lifetime": _LIFETIME,
        "keys": _KEYS,
        "signatureAlgorithms": array(string(), min_items=1),
        "node": _NODE,
        "maxPending": integer(
            "at CREATE, deny when the requester already has this many pending CSRs of the signer",
            minimum=1,
            maximum=MAX_PENDING,
        ),
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
        "auto": obj(
            {
                "approve": boolean("`csr-webhook approve` approves a CSR the policy allows"),
                "deny": boolean("`csr-webhook approve` denies a CSR the policy does not allow"),
            },
            "what the approval controller does with pending CSRs of these signers",
        ),
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

# The API server's own bounds on spec.maxExpirationSeconds (pkg/apis/certificates/types.go:
# MinMaxExpirationSeconds, MaxMaxExpirationSeconds); lint warns about a cap outside them.
POD_MIN_EXPIRATION = 3600
POD_MAX_EXPIRATION = 7862400
_POD_CERTIFICATES = obj(
    {
        "requesters": obj(
            {
                "users": array(string(), "username patterns"),
                "groups": array(string(), "group patterns"),
                "serviceAccounts": array(string(), "service accounts (namespace/name)"),
            },
            "who may create a PodCertificateRequest of these signers; every list given must match",
            default={"users": ["system:node:*"], "groups": ["system:nodes"]},
        ),
        "pods": obj(
            {
                "namespaces": array(string(), "glob patterns of the pod's namespace"),
                "serviceAccounts": array(
                    string(), "namespace/name patterns of the pod's service account"
                ),
            },
            "which pods may use these signers (a list not given admits any)",
        ),
        "keys": {**_KEYS, "description": "key types the stub CSR may carry (as constraints.keys)"},
        "maxExpirationSeconds": duration(
            "cap on spec.maxExpirationSeconds (absent in the request: 86400)"
        ),
        "annotations": obj(
            {
                "allowed": {
                    "description": "unverifiedUserAnnotations keys permitted, each with the "
                    "glob patterns its value must match",
                    "type": "object",
                    "additionalProperties": array(string()),
                }
            },
            "spec.unverifiedUserAnnotations permitted (none when absent)",
        ),
        "issued": obj(
            {
                **{
                    kind.key: array(
                        string(),
                        f"{kind.description} the signer may write (none: no {kind.name} SAN)",
                    )
                    for kind in SAN_KINDS
                },
                "subject": obj(
                    {
                        name: array(
                            string(), f"patterns every {name} of the leaf's subject must match"
                        )
                        for name in SUBJECT_ATTRIBUTES
                    },
                    "the subject attributes the leaf may carry (absent: an empty subject)",
                ),
                "usages": array(
                    enum(*KNOWN_USAGES), "key usages and extended key usages the leaf may carry"
                ),
                "lifetime": obj(
                    {
                        "min": duration("shortest notAfter - notBefore of the leaf"),
                        "max": duration("longest notAfter - notBefore of the leaf"),
                    },
                    "bounds on the leaf's lifetime",
                ),
            },
            "what the signer may write into /status; pod templates allowed",
        ),
        "issuers": _SUBJECTS,
        "caBundle": string("PEM CA certificate(s) the chain must verify to"),
        "caBundleFile": string("file beside the policy file holding the PEM CA certificate(s)"),
    },
    "how these signers' PodCertificateRequests are governed",
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
                "rules": array(_RULE, "how CSRs of these signers are governed", min_items=1),
                "approval": _APPROVAL,
                "issuance": _ISSUANCE,
                "podCertificates": _POD_CERTIFICATES,
            },
            required=("signerNames",),
        )
        # A policy governs CSRs (rules), PodCertificateRequests (podCertificates), or both.
        | {"anyOf": [{"required": ["rules"]}, {"required": ["podCertificates"]}]},
    },
    "A SignerPolicy document",
    required=("apiVersion", "kind", "metadata", "spec"),
)


def default_at(root: Schema, path: tuple[str | int, ...]) -> Any:
    """The declared default of the field at `path` (list indices step into `items`), or None
    when it declares none or there is no such field."""
    node: Schema | None = root
    for part in path:
        if node is None:
            return None
        node = node.get("items") if isinstance(part, int) else node["properties"].get(part)
    return None if node is None else node.get("default")
