"""The AdmissionReview v1 wire contract: parse a review, build its response.

Owns the wire types (camelCase lives here and in YAML only). A review that is not a
well-formed `admission.k8s.io/v1` AdmissionReview raises `ReviewError` (HTTP 400 upstream);
policy outcomes never raise. Rules from the API server's
`staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/request/admissionreview.go`.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from webhook.decision import Decision, Verdict
from webhook.errors import ReviewError

# kube-apiserver sends a 36-character UUID (k8s.io/apimachinery/pkg/types.UID). The answer must
# echo the uid, so an unbounded one would unbound every answer (and break its 64 KiB ceiling).

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
CSR_GROUP = "certificates.k8s.io"
CSR_RESOURCE = "certificatesigningrequests"
# Parsed JSON can take 25x its size (a 3 MiB body of `{},{},…` is 75 MiB of dicts): a body
# with more separators and containers than this is refused before json.loads. Counted on the
# raw bytes, strings included, so the bound is conservative; a real review has a few hundred.
MAX_JSON_SEPARATORS = 200_000
MAX_MESSAGE = 1024
MAX_UID = 128
MAX_WARNING = 256
MAX_ANNOTATION_VALUE = 1024
# A denial lists at most this many causes (the last one summarising the rest) within
# CAUSES_BUDGET bytes of JSON, and the warnings stay within the API server's own warning
# budget (4096 characters); with the 1024-character message the whole response stays far
# under 64 KiB however many violations a request earns.
# A cause's message is the violation's whole message: a value is shown whole up to 256
# characters beside what was allowed (webhook/text.py), which stays within MAX_CAUSE_TEXT.
MAX_CAUSES = 100
MAX_CAUSE_TEXT = 1024
CAUSES_BUDGET = 24 * 1024
WARNINGS_BUDGET = 4096
MORE_CAUSES_REASON = "csr-webhook.more_violations"
_ANNOTATION_KEY = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


class StatusCause(TypedDict):
    reason: str
    field: str
    message: str


class StatusDetails(TypedDict):
    causes: list[StatusCause]


class Status(TypedDict):
    code: int
    status: str
    reason: str
    message: str
    details: NotRequired[StatusDetails]


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]
    patchType: NotRequired[str]
    patch: NotRequired[str]


class AdmissionReviewResponse(TypedDict):
    apiVersion: str
    kind: str
    response: AdmissionResponse


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionRequest:
    """The parts of `request` we use, type-checked."""

    uid: str
    group: str
    resource: str
    sub_resource: str
    operation: str
    name: str
    user_info: UserInfo
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    dry_run: bool = False

    @property
    def is_csr(self) -> bool:
        return self.group == CSR_GROUP and self.resource == CSR_RESOURCE


def parse_review(body: bytes) -> AdmissionRequest:
    """Decode and type-check an AdmissionReview v1 request body."""
    separators = body.count(b",") + body.count(b"{") + body.count(b"[")
    if separators > MAX_JSON_SEPARATORS:
        raise ReviewError(
            f"body has {separators} JSON separators and containers; at most "
            f"{MAX_JSON_SEPARATORS} (far beyond any AdmissionReview) are read"
        )
    try:
        review = json.loads(body)
    except RecursionError as exc:
        raise ReviewError("body is nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReviewError(f"body is not JSON: {exc}") from exc
    if not isinstance(review, dict):
        raise ReviewError("body is not a JSON object")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise ReviewError(
            f"expected apiVersion {API_VERSION!r} and kind {KIND!r}, got "
            f"{_shown(review.get('apiVersion'))} and {_shown(review.get('kind'))}"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError("request must be an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid must be a non-empty string")
    if len(uid) > MAX_UID:
        # The API server sends a UUID; the answer echoes the uid whole, so a long one would
        # let any client choose the size of the answer.
        raise ReviewError(f"request.uid must be at most {MAX_UID} characters, got {len(uid)}")
    resource = _object(request, "resource", required=True) or {}
    user = _object(request, "userInfo") or {}
    groups = user.get("groups", [])
    if groups is None:
        groups = []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ReviewError("request.userInfo.groups must be a list of strings")
    extra = user.get("extra") or {}
    if not isinstance(extra, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in extra.values()
    ):
        raise ReviewError("request.userInfo.extra must map strings to lists of strings")
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ReviewError("request.dryRun must be a boolean")
    return AdmissionRequest(
        uid=uid,
        group=_string(resource, "group", "request.resource"),
        resource=_string(resource, "resource", "request.resource"),
        sub_resource=_string(request, "subResource", "request"),
        operation=_string(request, "operation", "request", required=True),
        name=_string(request, "name", "request"),
        user_info=UserInfo(
            username=_string(user, "username", "request.userInfo"),
            uid=_string(user, "uid", "request.userInfo"),
            groups=tuple(groups),
            extra={k: tuple(v) for k, v in extra.items()},
        ),
        object=_object(request, "object"),
        old_object=_object(request, "oldObject"),
        dry_run=dry_run,
    )


def _object(parent: dict[str, Any], key: str, *, required: bool = False) -> dict[str, Any] | None:
    value = parent.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise ReviewError(f"request.{key} must be an object")
    return value


def _string(parent: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = parent.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ReviewError(f"{where}.{key} must be a string")
    return value


def _shown(value: object) -> str:
    """A value from a broken review, for an error message: repr, cut to 64 characters."""
    text = repr(value)
    return text if len(text) <= 64 else f"{text[:64]}… ({len(text)} characters)"


def printable(text: str, limit: int) -> str:
    """Drop control characters (the API server drops such warnings whole) and cap the length."""
    clean = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _message_parts(decision: Decision) -> list[str]:
    """`field: message` per violation; where the reporter changes, a `rule 'x': ` (or
    `rules 'x', 'y': `, or back to `policy 'p': `) prefix says whose violations follow."""
    parts: list[str] = []
    scope: tuple[str, ...] = ()
    for violation in decision.violations:
        text = f"{violation.field}: {violation.message}"
        rules = decision.reported_by.get(violation, ())
        if rules != scope:
            if len(rules) == 1:
                owner = f"rule {rules[0]!r}"
            elif rules:
                owner = f"rules {', '.join(repr(r) for r in rules)}"
            else:
                owner = f"policy {decision.policy!r}"
            text = f"{owner}: {text}"
            scope = rules
        parts.append(text)
    return parts


def build_message(decision: Decision) -> str:
    """One line naming the policy, each violation and the rule(s) that reported it, ≤
    MAX_MESSAGE characters. The API server prefixes `admission webhook "..." denied the
    request: `, so the line does not say "denied" again."""
    head = decision.summary or f"policy {decision.policy!r}"
    parts = _message_parts(decision)
    # `policy 'p', rule 'r': field: …` when the first violation is a rule's.
    first_is_rule = bool(decision.violations) and bool(
        decision.reported_by.get(decision.violations[0])
    )
    message = printable(head + (", " if first_is_rule else ": " if parts else ""), MAX_MESSAGE)
    for index, part in enumerate(parts):
        candidate = message + ("; " if index else "") + printable(part, MAX_MESSAGE)
        remaining = len(parts) - index - 1
        tail = f" … and {remaining} more" if remaining else ""
        if len(candidate) + len(tail) > MAX_MESSAGE:
            more = f" … and {len(parts) - index} more"
            return message[: MAX_MESSAGE - len(more)] + more
        message = candidate
    return message


def build_audit_annotations(decision: Decision) -> dict[str, str]:
    codes = ",".join(dict.fromkeys(v.code for v in decision.violations))
    if len(codes) > MAX_ANNOTATION_VALUE:
        codes = codes[: MAX_ANNOTATION_VALUE - 1] + "…"
    annotations = {
        "policy": decision.policy,
        "rule": ",".join(decision.rules),
        "decision": decision.verdict.value,
        "violations": codes,
    }
    return {k: printable(v, MAX_ANNOTATION_VALUE) for k, v in annotations.items() if v}


def build_causes(decision: Decision) -> list[StatusCause]:
    """One cause per violation until MAX_CAUSES or CAUSES_BUDGET; then one that counts the
    rest. Sizes are measured as JSON with non-ASCII escaped, the way the response is sent."""
    causes: list[StatusCause] = []
    budget = CAUSES_BUDGET
    violations = decision.violations
    for index, violation in enumerate(violations):
        cause: StatusCause = {
            "reason": printable(violation.code, MAX_CAUSE_TEXT),
            "field": printable(violation.field, MAX_CAUSE_TEXT),
            "message": printable(violation.message, MAX_CAUSE_TEXT),
        }
        size = len(json.dumps(cause))
        if (index == MAX_CAUSES - 1 and len(violations) > MAX_CAUSES) or size > budget:
            causes.append(
                {
                    "reason": MORE_CAUSES_REASON,
                    "field": "",
                    "message": f"… and {len(violations) - index} more violation(s)",
                }
            )
            break
        causes.append(cause)
        budget -= size
    return causes


def build_warnings(decision: Decision) -> list[str]:
    """Distinct warnings, each ≤ MAX_WARNING, together ≤ WARNINGS_BUDGET characters (past
    that the API server would cut every warning short); a last one counts what was left."""
    distinct = list(dict.fromkeys(printable(w, MAX_WARNING) for w in decision.warnings if w))
    kept: list[str] = []
    used = 0
    reserve = 64  # room for the counting warning
    for index, warning in enumerate(distinct):
        if used + len(warning) + reserve > WARNINGS_BUDGET:
            kept.append(f"csr-webhook: … and {len(distinct) - index} more warning(s)")
            break
        kept.append(warning)
        used += len(warning)
    return kept


def build_response(
    uid: str, decision: Decision, *, mutating: bool = False
) -> AdmissionReviewResponse:
    response: AdmissionResponse = {"uid": uid, "allowed": decision.allowed}
    if decision.verdict is Verdict.DENIED:
        response["status"] = {
            "code": 403,
            "status": "Failure",
            "reason": "Forbidden",
            "message": build_message(decision),
            "details": {"causes": build_causes(decision)},
        }
    warnings = build_warnings(decision)
    if warnings:
        response["warnings"] = warnings
    if decision.verdict is not Verdict.IGNORED and decision.policy != "none":
        annotations = build_audit_annotations(decision)
        response["auditAnnotations"] = {
            k: v for k, v in annotations.items() if _ANNOTATION_KEY.fullmatch(k)
        }
    if mutating and decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(
            json.dumps(list(decision.patch), separators=(",", ":")).encode()
        ).decode()
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
