"""Build one SignerPolicy from one YAML document, recording every problem with its line.

Checks the declared shape (`schema`) and the meaning of each field: patterns, CIDRs, usages,
durations and their order, template use, rule names, CA bundles. Problems that need all
documents at once (duplicate names, selection ties) are the loader's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeGuard

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from webhook.errors import PatternError, SourceError
from webhook.matching.patterns import Pattern, PatternKind, compile_pattern
from webhook.matching.variables import REQUESTER_VARIABLES
from webhook.policy import schema
from webhook.policy.build_pods import build_pod_certificates
from webhook.policy.model import (
    Allowed,
    Approval,
    AutoApproval,
    Constraints,
    DenyLists,
    Enforcement,
    Issuance,
    KeyRules,
    Lifetime,
    NodeBinding,
    Rule,
    SignerPolicy,
    Subjects,
    ValueRule,
)
from webhook.policy.schema import parse_duration
from webhook.policy.source import Document, PathKey, Problem, format_path, read_bounded
from webhook.policy.validation import shape_problems
from webhook.sankinds import SAN_KINDS
from webhook.text import show
from webhook.x509.oids import ACCEPTABLE_SIGNATURE_ALGORITHMS

MIN_LIFETIME = 600
_CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_SIGNATURE_ALGORITHMS = ACCEPTABLE_SIGNATURE_ALGORITHMS


NONE: frozenset[str] = frozenset()


def _known(variables: frozenset[str]) -> str:
    return ", ".join(f"${{{name}}}" for name in sorted(variables))


def _pod_variable_in_csr_pattern(variable: str, text: str) -> str:
    return (
        f"${{{variable}}} in {text!r} is a pod template, defined only in "
        f"podCertificates.issued; a CSR's patterns may use {_known(REQUESTER_VARIABLES)}"
    )


__all__ = ["PolicyBuilder", "flat_file_name_problem", "is_flat_file_name", "parse_duration"]


def is_flat_file_name(name: str) -> bool:
    """A name that is a valid ConfigMap key, and so a file directly in the mounted directory."""
    return bool(_CONFIGMAP_KEY.fullmatch(name)) and name not in (".", "..") and len(name) <= 253


def flat_file_name_problem(name: str) -> str:
    return (
        f"{show(name)} must be the name of a file beside the policy file (letters, digits, "
        "'-', '_' and '.'; no '/'): policies are mounted from a ConfigMap, one flat directory "
        "whose keys cannot hold a path"
    )


class PolicyBuilder:
    """Builds one SignerPolicy from one validated document, recording semantic problems.

    A value of the wrong shape is reported once, by the shape check: a semantic check never
    reports on it again, nor on what it makes of it (`requiredUsages` against a broken
    `allowed.usages`, a key type lost to a broken `rsa`)."""

    def __init__(
        self,
        document: Document,
        problems: list[Problem],
        read_file: Callable[[Path], bytes] = read_bounded,
    ) -> None:
        self.document = document
        self.problems = problems
        self.policy_name = "?"
        self.read_file = read_file  # bounded; raises SourceError
        self.files_needed: list[str] = []  # beside the policy file, by name
        self.misshapen: set[PathKey] = set()  # where the shape check found a wrong type
        self._holding_misshapen: set[PathKey] = set()  # those paths and every prefix of them

    def _misshapen_at_or_above(self, path: PathKey) -> bool:
        return any(path[:length] in self.misshapen for length in range(len(path) + 1))

    def broken(self, path: PathKey) -> bool:
        """The shape check reported a wrong type at `path`, on a value holding it, or inside
        it. Costs the path's depth, whatever the number of problems."""
        return path in self._holding_misshapen or self._misshapen_at_or_above(path)

    def field(self, raw: Mapping[str, object], path: PathKey, key: str) -> object:
        """`raw[key]`, or when it is absent the default the schema declares for it (None if it
        declares none): every default is the schema's, none is restated here."""
        if key in raw:
            return raw[key]
        return schema.default_at(schema.SIGNER_POLICY, (*path, key))

    def problem(self, path: PathKey, message: str, severity: str = "error") -> None:
        if self._misshapen_at_or_above(path):
            return  # a knock-on of a value already reported with the wrong type
        line = self.document.line_of(path)
        self.problems.append(
            Problem(self.document.file, line, format_path(path), message, severity)
        )

    def build(self) -> SignerPolicy | None:
        value = self.document.value
        if not isinstance(value, dict):
            self.problem((), "a policy document must be a mapping")
            return None
        if value.get("kind") == "PolicyTest":
            # A suite handed to `check` by name: one pointer, not a SignerPolicy's knock-ons.
            file = self.document.file
            self.problem(
                ("kind",),
                f"{Path(file).name} is a PolicyTest suite, not a SignerPolicy: run it with "
                f"`csr-webhook test {file}`",
            )
            return None
        before = len(self.problems)
        for path, message, wrong_type in shape_problems(schema.SIGNER_POLICY, value):
            self.problem(path, message)
            if wrong_type:
                self.misshapen.add(path)
                self._holding_misshapen.update(path[:length] for length in range(len(path) + 1))
        shape_ok = len(self.problems) == before
        metadata = _mapping(value.get("metadata"))
        self.policy_name = str(metadata.get("name", "?"))
        spec = _mapping(value.get("spec"))
        signer_names = self.patterns(
            spec.get("signerNames"), ("spec", "signerNames"), PatternKind.SIGNER, variables=NONE
        )
        for index, text in enumerate(_strings(spec.get("signerNames"))):
            if text.count("/") != 1:
                # A signer name is exactly domain/name (ValidateSignerName), and `*` never
                # crosses `/`: `*` or `**` alone would govern no signer at all.
                hint = (
                    "; '*' never crosses '/', so this pattern matches no signer: write "
                    "'example.com/*' for every signer of one domain"
                    if "*" in text and "/" not in text
                    else ""
                )
                self.problem(
                    ("spec", "signerNames", index),
                    f"signer name {text!r} must have the form 'example.com/signer-name'{hint}",
                )
        rules = tuple(
            self.rule(_mapping(raw), ("spec", "rules", index))
            for index, raw in enumerate(_list(spec.get("rules")))
        )
        names = [_mapping(raw).get("name") for raw in _list(spec.get("rules"))]
        for index, name in enumerate(names):
            if isinstance(name, str) and name in names[:index]:
                self.problem(("spec", "rules", index, "name"), f"duplicate rule name {name!r}")
        policy = SignerPolicy(
            name=self.policy_name,
            signer_names=signer_names,
            rules=rules,
            enforcement=self.enforcement(spec),
            deny=self.deny(_mapping(spec.get("deny")), ("spec", "deny")),
            approval=self.approval(_mapping(spec.get("approval")), ("spec", "approval")),
            issuance=self.issuance(_mapping(spec.get("issuance")), ("spec", "issuance"), rules),
            pod_certificates=build_pod_certificates(self, spec.get("podCertificates")),
            source=f"{self.document.file}:{self.document.line_of(())}",
        )
        return policy if shape_ok else None

    def enforcement(self, spec: Mapping[str, object]) -> Enforcement:
        value = self.field(spec, ("spec",), "enforcement")
        declared = schema.default_at(schema.SIGNER_POLICY, ("spec", "enforcement"))
        # Any other value is reported by the shape check, and the policy is not kept.
        return next((e for e in Enforcement if value == e.value), Enforcement(declared))

    def patterns(
        self,
        raw: object,
        path: PathKey,
        kind: PatternKind,
        *,
        variables: frozenset[str] = REQUESTER_VARIABLES,
        misplaced: Callable[[str, str], str] = _pod_variable_in_csr_pattern,
    ) -> tuple[Pattern, ...]:
        """The patterns of the list at `path`; a template outside `variables` is a problem
        worded by `misplaced(variable, pattern text)` (no variables: no templates at all)."""
        out = []
        for index, text in enumerate(_list(raw)):
            if not isinstance(text, str):
                continue
            try:
                pattern = compile_pattern(kind, text)
            except PatternError as exc:
                self.problem((*path, index), str(exc))
                continue
            if pattern.variables and not variables:
                self.problem((*path, index), f"templates are not allowed here: {text!r}")
                continue
            outside = sorted(pattern.variables - variables)
            if outside:
                self.problem((*path, index), misplaced(outside[0], text))
                continue
            out.append(pattern)
        return tuple(out)

    def subjects(self, raw: Mapping[str, object] | None, path: PathKey) -> Subjects | None:
        if raw is None:
            return None

        def get(key: str, kind: PatternKind) -> tuple[Pattern, ...] | None:
            if key not in raw:
                return None
            return self.patterns(raw[key], (*path, key), kind, variables=NONE)

        return Subjects(
            users=get("users", PatternKind.GLOB),
            groups=get("groups", PatternKind.GLOB),
            service_accounts=get("serviceAccounts", PatternKind.SERVICE_ACCOUNT),
        )

    def value_rule(self, raw: Mapping[str, object], path: PathKey, kind: PatternKind) -> ValueRule:
        values = self.patterns(raw.get("values"), (*path, "values"), kind)
        required = self.field(raw, path, "required") is True
        if required and not _list(raw.get("values")) and not self.broken((*path, "values")):
            self.problem((*path, "required"), "required is true but no values are allowed")
        max_items = raw.get("maxItems")
        return ValueRule(
            values=values,
            required=required,
            max_items=max_items if isinstance(max_items, int) else None,
            allow_wildcard_names=self.field(raw, path, "allowWildcardNames") is True,
        )

    def rule(self, raw: Mapping[str, object], path: PathKey) -> Rule:
        name = raw.get("name")
        requesters = raw.get("requesters")
        return Rule(
            name=name if isinstance(name, str) else "?",
            requesters=self.subjects(
                _mapping(requesters) if requesters is not None else None, (*path, "requesters")
            ),
            allowed=self.allowed(_mapping(raw.get("allowed")), (*path, "allowed")),
            constraints=self.constraints(
                _mapping(raw.get("constraints")), (*path, "constraints"), raw
            ),
        )

    def allowed(self, raw: Mapping[str, object], path: PathKey) -> Allowed:
        subject = {
            attribute: self.value_rule(
                _mapping(spec), (*path, "subject", attribute), PatternKind.GLOB
            )
            for attribute, spec in _mapping(raw.get("subject")).items()
            if attribute in schema.SUBJECT_ATTRIBUTES
        }
        sans = {
            kind.attribute: self.value_rule(
                _mapping(raw[kind.key]), (*path, kind.key), PatternKind(kind.pattern)
            )
            for kind in SAN_KINDS
            if kind.key in raw
        }
        extensions = []
        for index, oid in enumerate(_list(raw.get("extensions"))):
            if isinstance(oid, str) and not _OID.fullmatch(oid):
                self.problem((*path, "extensions", index), f"{oid!r} is not a dotted OID")
            elif isinstance(oid, str):
                extensions.append(oid)
        return Allowed(
            subject=subject,
            **sans,
            usages=frozenset(_strings(raw.get("usages"))),
            is_ca=self.field(raw, path, "isCA") is True,
            extensions=frozenset(extensions),
        )

    def constraints(
        self, raw: Mapping[str, object], path: PathKey, rule: Mapping[str, object]
    ) -> Constraints:
        allowed_usages = set(_strings(_mapping(rule.get("allowed")).get("usages")))
        usages_ok = not self.broken((*path[:-1], "allowed", "usages"))
        required_usages = _strings(raw.get("requiredUsages"))
        for index, usage in enumerate(required_usages):
            if usage in schema.KNOWN_USAGES and usage not in allowed_usages and usages_ok:
                self.problem(
                    (*path, "requiredUsages", index),
                    f"required usage {usage!r} is not in allowed.usages, "
                    "so the rule permits nothing",
                )
        return Constraints(
            required_usages=frozenset(required_usages),
            require_any_san=self.field(raw, path, "requireAnySAN") is True,
            lifetime=self.lifetime(_mapping(raw.get("lifetime")), (*path, "lifetime")),
            keys=self.keys(self.field(raw, path, "keys"), (*path, "keys")),
            signature_algorithms=self.signature_algorithms(
                raw.get("signatureAlgorithms"), (*path, "signatureAlgorithms")
            ),
            node=self.node(raw.get("node"), (*path, "node")),
            max_pending=max_pending if _integer(max_pending := raw.get("maxPending")) else None,
        )

    def node(self, raw: object, path: PathKey) -> NodeBinding | None:
        if not isinstance(raw, dict):
            return None
        binding = NodeBinding(
            must_exist=self.field(raw, path, "mustExist") is True,
            sans_from_addresses=frozenset(_strings(raw.get("sansFromAddresses"))),
            allow_shared=self.field(raw, path, "sharedAddresses") == "Allow",
        )
        # Absent, not malformed (a value of the wrong shape is reported already).
        if "sharedAddresses" in raw and "sansFromAddresses" not in raw:
            self.problem(
                (*path, "sharedAddresses"),
                "sharedAddresses only judges SANs bound by sansFromAddresses, which this "
                "binding does not list; drop it or list address types",
                severity="warning",
            )
        if not binding.must_exist and not binding.sans_from_addresses:
            self.problem(
                path,
                "mustExist: false without sansFromAddresses checks nothing but that the "
                "requester is a node; drop constraints.node or list address types",
                severity="warning",
            )
        return binding

    def duration(self, raw: Mapping[str, object], key: str, path: PathKey) -> int | None:
        if key not in raw or raw[key] is None:
            return None
        try:
            seconds = parse_duration(raw[key])
        except ValueError as exc:
            self.problem((*path, key), str(exc))
            return None
        if seconds < MIN_LIFETIME:
            self.problem(
                (*path, key),
                f"{raw[key]!r} is shorter than 10m (Kubernetes refuses expirationSeconds < 600)",
            )
        return seconds

    def lifetime(self, raw: Mapping[str, object], path: PathKey) -> Lifetime:
        low = self.duration(raw, "min", path)
        high = self.duration(raw, "max", path)
        default = self.duration(raw, "default", path)
        if low is not None and high is not None and low > high:
            self.problem((*path, "min"), f"min {raw['min']!r} is longer than max {raw['max']!r}")
        if default is not None and high is not None and default > high:
            self.problem(
                (*path, "default"), f"default {raw['default']!r} is longer than max {raw['max']!r}"
            )
        if default is not None and low is not None and default < low:
            self.problem(
                (*path, "default"), f"default {raw['default']!r} is shorter than min {raw['min']!r}"
            )
        clamp = self.field(raw, path, "onExceed") == "Clamp"
        if clamp and high is None and not self.broken((*path, "max")):
            self.problem((*path, "onExceed"), "onExceed: Clamp needs a max")
        return Lifetime(min=low, max=high, default=default, clamp=clamp)

    def keys(self, raw: object, path: PathKey) -> KeyRules:
        keys = _mapping(raw)
        rsa = None
        if "rsa" in keys:
            rsa_raw = _mapping(keys["rsa"])
            low = self.field(rsa_raw, (*path, "rsa"), "minBits")
            high = self.field(rsa_raw, (*path, "rsa"), "maxBits")
            if _integer(low) and _integer(high):
                if low > high:
                    self.problem((*path, "rsa", "minBits"), f"minBits {low} exceeds maxBits {high}")
                rsa = (low, high)
        curves = None
        if "ecdsa" in keys:
            ecdsa = _mapping(keys["ecdsa"])
            curves = frozenset(_strings(self.field(ecdsa, (*path, "ecdsa"), "curves")))
        rules = KeyRules(
            rsa=rsa,
            ecdsa_curves=curves,
            ed25519=self.field(keys, path, "ed25519") is True,
            ed448=self.field(keys, path, "ed448") is True,
        )
        if not (rules.rsa or rules.ecdsa_curves or rules.ed25519 or rules.ed448) and not (
            self.broken(path)
        ):
            self.problem(path, "no key type is accepted (list rsa, ecdsa, ed25519 or ed448)")
        return rules

    def signature_algorithms(self, raw: object, path: PathKey) -> frozenset[str] | None:
        if raw is None:
            return None
        names = _strings(raw)
        for index, name in enumerate(names):
            if name not in _SIGNATURE_ALGORITHMS:
                weak = "sha1" in name.lower() or "md5" in name.lower()
                reason = "SHA-1 and MD5 are never accepted" if weak else "unknown algorithm"
                known = ", ".join(sorted(_SIGNATURE_ALGORITHMS))
                self.problem((*path, index), f"{name!r}: {reason} (known: {known})")
        return frozenset(names) & _SIGNATURE_ALGORITHMS

    def deny(self, raw: Mapping[str, object], path: PathKey) -> DenyLists:
        sans = {
            kind.attribute: self.patterns(
                raw.get(kind.key), (*path, kind.key), PatternKind(kind.pattern)
            )
            for kind in SAN_KINDS
        }
        subject = {
            attribute: self.patterns(values, (*path, "subject", attribute), PatternKind.GLOB)
            for attribute, values in _mapping(raw.get("subject")).items()
            if attribute in schema.SUBJECT_ATTRIBUTES
        }
        return DenyLists(**sans, subject=subject)

    def approval(self, raw: Mapping[str, object], path: PathKey) -> Approval:
        approvers = raw.get("approvers")
        return Approval(
            approvers=self.subjects(
                _mapping(approvers) if approvers is not None else None, (*path, "approvers")
            ),
            self_approval=self.field(raw, path, "selfApproval") == "Allow",
            recheck=self.field(raw, path, "recheck") is True,
            auto=self.auto(raw.get("auto"), (*path, "auto")),
        )

    def auto(self, raw: object, path: PathKey) -> AutoApproval | None:
        if not isinstance(raw, dict):
            return None
        return AutoApproval(
            approve=self.field(raw, path, "approve") is True,
            deny=self.field(raw, path, "deny") is True,
        )

    def issuance(
        self, raw: Mapping[str, object], path: PathKey, rules: tuple[Rule, ...]
    ) -> Issuance:
        issuers = raw.get("issuers")
        return Issuance(
            issuers=self.subjects(
                _mapping(issuers) if issuers is not None else None, (*path, "issuers")
            ),
            ca_certificates_der=self.ca_bundle(raw, path),
            max_lifetime=self.duration(raw, "maxLifetime", path),
        )

    def ca_bundle(self, raw: Mapping[str, object], path: PathKey) -> tuple[bytes, ...]:
        """The DER certificates of `caBundle` (inline PEM) or `caBundleFile` (a file beside
        the policy file) at `path`; () when neither is given or on a problem."""
        bundle: bytes | None = None
        if "caBundle" in raw and "caBundleFile" in raw:
            self.problem(path, "set caBundle or caBundleFile, not both")
        elif isinstance(raw.get("caBundle"), str):
            bundle = str(raw["caBundle"]).encode()
            where: PathKey = (*path, "caBundle")
        elif isinstance(raw.get("caBundleFile"), str):
            where = (*path, "caBundleFile")
            name = str(raw["caBundleFile"])
            if not is_flat_file_name(name):
                self.problem(where, flat_file_name_problem(name))
            else:
                file = Path(self.document.file).parent / name
                self.files_needed.append(name)
                try:
                    bundle = self.read_file(file)
                except SourceError as exc:
                    self.problem(where, f"cannot read {str(file)!r}: {exc}")
        if bundle is None:
            return ()
        try:
            loaded = x509.load_pem_x509_certificates(bundle)
        except ValueError as exc:
            self.problem(where, f"CA bundle does not parse as PEM certificates: {exc}")
            return ()
        return tuple(c.public_bytes(Encoding.DER) for c in loaded)


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: object) -> list[str]:
    return [item for item in _list(value) if isinstance(item, str)]
