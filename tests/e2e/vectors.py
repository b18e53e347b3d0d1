"""Write the AdmissionReviews the real API server sent as replayable vectors.

One JSON file per review: the scenario (test) that caused it, the policy overlay in force
(tests/e2e/policies/<overlay>/ over the shipped policies/, or none) and the files written beside
it for the run (`files`, only when there are any), the endpoint, the review exactly as received
(tokens scrubbed) and our answer. Reviews of CSRs go to apiserver/<version>/, of
PodCertificateRequests to apiserver-pods/<version>/; a directory is rewritten only when the run
recorded reviews of its resource (a `-k pod` run leaves the CSR vectors alone).
tests/test_apiserver_vectors.py replays them in the unit suite. A README line per file says
what each one is.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.e2e.recorder import Exchange


def _slug(text: str) -> str:
    """The test's name, at most 60 characters, keeping a parameter id (`[case]`) whole."""
    name, _, parameter = text.partition("[")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower().removeprefix("test_")).strip("-")
    if not parameter:
        return slug[:60]
    case = re.sub(r"[^a-z0-9]+", "-", parameter.lower()).strip("-")[:24]
    return f"{slug[: 59 - len(case)].rstrip('-')}-{case}"


def vector_name(index: int, exchange: Exchange) -> str:
    request = exchange.request.get("request", {})
    hook = exchange.path.strip("/") or "root"
    parts = [
        f"{index:03d}",
        _slug(exchange.scenario),
        hook,
        str(request.get("operation", "")).lower(),
    ]
    if request.get("subResource"):
        parts.append(str(request["subResource"]))
    return "-".join(part for part in parts if part) + ".json"


def describe(name: str, exchange: Exchange) -> str:
    request = exchange.request.get("request", {})
    response = (exchange.response or {}).get("response", {})
    resource = request.get("resource", {}).get("resource", "?")
    if request.get("subResource"):
        resource += "/" + request["subResource"]
    verdict = "allowed" if response.get("allowed") else "denied"
    causes = response.get("status", {}).get("details", {}).get("causes", [])
    if causes:
        verdict += " (" + ", ".join(sorted({c.get("reason", "") for c in causes})) + ")"
    if response.get("patch"):
        verdict += ", patched"
    if request.get("dryRun"):
        verdict += ", dry run"
    overlay = f", overlay {exchange.overlay}" if exchange.overlay else ""
    user = request.get("userInfo", {}).get("username", "?")
    return (
        f"- `{name}`: {request.get('operation')} {resource} by `{user}` on {exchange.path}: "
        f"{verdict}; scenario {exchange.scenario}{overlay}"
    )


def vector(exchange: Exchange) -> dict[str, Any]:
    written = {
        "scenario": exchange.scenario,
        "overlay": exchange.overlay,
        "path": exchange.path,
        "query": exchange.query,
        "status": exchange.status,
        "request": exchange.request,
        "response": exchange.response,
    }
    if exchange.files:
        written["files"] = exchange.files
    return written


# The directory under tests/vectors/ of each resource's recordings (anything else: a CSR's).
DIRECTORIES = {
    "certificatesigningrequests": "apiserver",
    "podcertificaterequests": "apiserver-pods",
}
TITLES = {
    "apiserver": "AdmissionReviews",
    "apiserver-pods": "AdmissionReviews of PodCertificateRequests",
}


def directory_of(exchange: Exchange) -> str:
    resource = exchange.request.get("request", {}).get("resource", {}).get("resource", "")
    return DIRECTORIES.get(str(resource), "apiserver")


def write_vectors(
    exchanges: Sequence[Exchange], version: str, session_dir: Path, repo_dir: Path | None
) -> str:
    """Into session_dir/<directory>/<version>/, and with repo_dir (tests/vectors) there too."""
    written = []
    for directory in dict.fromkeys(DIRECTORIES.values()):
        group = [e for e in exchanges if directory_of(e) == directory]
        if not group:
            continue
        targets = [session_dir / directory] + ([repo_dir / directory] if repo_dir else [])
        written.append(_write_group(group, version, directory, targets))
    return "; ".join(written) or f"none ({session_dir})"


def _write_group(
    exchanges: Sequence[Exchange], version: str, directory: str, parents: Sequence[Path]
) -> str:
    targets = [parent / version for parent in parents]
    for target in targets:
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        lines = [
            f"# {TITLES[directory]} sent by kube-apiserver {version}",
            "",
            "Recorded by `make e2e` (tests/e2e, CSR_WEBHOOK_E2E_RECORD=1) from the real API server",
            "and replayed by tests/test_apiserver_vectors.py. Public keys and certificates only;",
            "tokens, if any, are replaced by `<token>`. Do not edit: record again.",
            "",
        ]
        for index, exchange in enumerate(exchanges, start=1):
            name = vector_name(index, exchange)
            (target / name).write_text(
                json.dumps(vector(exchange), indent=1, sort_keys=True) + "\n"
            )
            lines.append(describe(name, exchange))
        (target / "README.md").write_text("\n".join(lines) + "\n")
    return ", ".join(str(t) for t in targets) + f" ({len(exchanges)} reviews)"
