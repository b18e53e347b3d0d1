"""The output of `csr-webhook eval`: an aligned table and one line per violation, or JSON.

Every cell and message goes through `printable` (the input may be hostile: control characters
and overlong values are shown escaped and cut).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from webhook.response import printable

if TYPE_CHECKING:
    from webhook.authoring.evaluate import Result

COLUMNS = ("NAME", "SIGNER", "REQUESTER", "VERDICT", "POLICY", "RULE", "VIOLATIONS")


def _cell(text: str) -> str:
    return printable(text, 256) or "-"


def render_text(results: Sequence[Result]) -> str:
    """An aligned table, then one line per violation: `name: code: field: message`."""
    if not results:
        return ""
    rows = [COLUMNS] + [
        (
            r.item.name,
            r.item.signer_name,
            r.item.requester.username,
            r.decision.verdict.value,
            r.decision.policy,
            ",".join(r.decision.rules),
            ",".join(dict.fromkeys(v.code for v in r.decision.violations)),
        )
        for r in results
    ]
    cells = [[_cell(c) if index else c for c in row] for index, row in enumerate(rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    details = [
        printable(f"{r.item.name}: {v.code}: {v.field}: {v.message}", 4096)
        for r in results
        for v in r.decision.violations
    ]
    return "\n".join([*lines, *([""] if details else []), *details]) + "\n"


def render_json(results: Sequence[Result]) -> str:
    out = [
        {
            "name": r.item.name,
            "kind": "PodCertificateRequest" if r.item.pod else "CertificateSigningRequest",
            "signer": r.item.signer_name,
            "requester": {
                "username": r.item.requester.username,
                "groups": list(r.item.requester.groups),
            },
            "allowed": r.decision.allowed,
            "verdict": r.decision.verdict.value,
            "policy": r.decision.policy,
            "rule": ",".join(r.decision.rules) or None,
            "violations": [
                {"code": v.code, "field": v.field, "message": v.message}
                for v in r.decision.violations
            ],
        }
        for r in results
    ]
    return json.dumps(out, indent=2) + "\n"
