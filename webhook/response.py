"""The AdmissionReview v1 response: `build_response(uid, decision)` and its bounded parts.

Owns the response's wire types. Every part is bounded (message, causes, warnings, audit
annotations), so an answer stays far under the API server's 64 KiB however many violations a
request earns; control characters are dropped (the API server drops such warnings whole).
"""

from __future__ import annotations

import base64
import json
import unicodedata
from collections.abc import Mapping
from typing import NotRequired, TypedDict

from webhook.admission import API_VERSION, KIND
from webhook.decision import Decision, Verdict
from webhook.jsonwire import compact_json

MAX_MESSAGE = 1024
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


def printable(text: str, limit: int) -> str:
    """Drop control characters (the API server drops such warnings whole) and cap the length."""
    # isprintable() is False for every Cc and Cs character (and for some others, which the
    # slow path keeps): most text has none, and is not walked character by character.
    clean = (
        text
        if text.isprintable()
        else "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    )
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
    """Four fixed keys, each a valid annotation key (the API server prefixes them with the
    webhook's name); empty values left out."""
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
        response["auditAnnotations"] = build_audit_annotations(decision)
    if mutating and decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(
            json.dumps(list(decision.patch), separators=(",", ":")).encode()
        ).decode()
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


# How the answer goes on the wire, as Flask's jsonify sent it before: compact separators,
# non-ASCII escaped (ASCII bytes), keys in the order built, one trailing newline.


def encode_json(value: Mapping[str, object]) -> bytes:
    """A JSON body's bytes, as jsonify wrote them."""
    return (compact_json(value) + "\n").encode("ascii")


def encode_response(review: AdmissionReviewResponse) -> bytes:
    """The response body's bytes."""
    return encode_json(review)
