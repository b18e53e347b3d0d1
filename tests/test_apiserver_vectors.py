"""AdmissionReviews recorded from a real kube-apiserver (tests/vectors/apiserver/<version>/,
written by `make e2e` with CSR_WEBHOOK_E2E_RECORD=1), replayed through the Flask app.

Each recorded review must get the decision the live webhook gave it, under the same policies
(the shipped policies/, with the e2e overlay of tests/e2e/policies/<overlay>/ when one was in
force). And our own review builders (tests/reviews.py, tests/update_reviews.py) must produce,
for each operation and subresource, exactly the fields and JSON types the real server sends.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import ContractClient
from tests.e2e.recorder import BOOTSTRAP_TOKEN, JWT
from webhook.app import create_app
from webhook.policy.loader import load_policies
from webhook.reload import PolicyStore
from webhook.settings import Settings

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RECORDED = ROOT / "vectors" / "apiserver"
OVERLAYS = ROOT / "e2e" / "policies"
VECTORS = sorted(RECORDED.glob("*/*.json"))


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def test_recorded_vectors_exist_and_are_catalogued() -> None:
    assert VECTORS, f"no recorded AdmissionReviews under {RECORDED}"
    for version in sorted({p.parent for p in VECTORS}):
        readme = (version / "README.md").read_text()
        names = sorted(p.name for p in version.glob("*.json"))
        listed = sorted(
            line.split("`")[1] for line in readme.splitlines() if line.startswith("- `")
        )
        assert listed == names, f"{version}/README.md does not list exactly its vectors"


def test_recorded_vectors_hold_no_secrets() -> None:
    """Public keys and certificates only: no private key, no bootstrap token, no JWT."""
    for path in VECTORS:
        text = path.read_text()
        decoded = [
            base64.b64decode(value)
            for value in re.findall(r'"(LS0t[A-Za-z0-9+/=]+)"', text)  # base64 of "-----"
        ]
        assert not any(b"PRIVATE KEY" in data for data in decoded), path.name
        assert not BOOTSTRAP_TOKEN.search(text), path.name
        assert not JWT.search(text), path.name


def _app(tmp_path: Path, overlay: str) -> Flask:
    directory = tmp_path / "policies"
    directory.mkdir()
    for source in sorted((REPO / "policies").glob("*.yaml")):
        if not source.name.endswith(".test.yaml"):
            shutil.copyfile(source, directory / source.name)
    if overlay:
        for source in sorted((OVERLAYS / overlay).glob("*.yaml")):
            shutil.copyfile(source, directory / source.name)
    result = load_policies([directory])
    assert result.policy_set is not None, [str(p) for p in result.problems]
    app = create_app(Settings(policies=directory), PolicyStore(directory, result.policy_set))
    app.test_client_class = ContractClient
    return app


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recorded_review_gets_the_recorded_decision(path: Path, tmp_path: Path) -> None:
    vector = _load(path)
    client = _app(tmp_path, vector["overlay"]).test_client()
    url = vector["path"] + (f"?{vector['query']}" if vector["query"] else "")
    answer = client.post(url, json=vector["request"])
    assert answer.status_code == vector["status"]
    assert answer.get_json() == vector["response"]


# ---- the builders may not drift from the real server ------------------------------------------

# Values whose keys are data, not fields: their entries are compared as one shape.
MAPS = {
    "userInfo.extra",
    "object.metadata.annotations",
    "oldObject.metadata.annotations",
    "object.metadata.labels",
    "oldObject.metadata.labels",
    "object.spec.extra",
    "oldObject.spec.extra",
}


def shape(value: Any, path: str = "") -> set[str]:
    """Every field path with its JSON type: `request.object.spec.usages[]: str`."""
    kind = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }[type(value)]
    found = {f"{path}: {kind}"} if path else set()
    if isinstance(value, dict):
        if path.removeprefix("request.") in MAPS:
            for item in value.values():
                found |= shape(item, f"{path}{{}}")
        else:
            for key, item in value.items():
                found |= shape(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in value:
            found |= shape(item, f"{path}[]")
    return found


def _recorded(path: str, operation: str, sub_resource: str) -> list[dict[str, Any]]:
    return [
        v["request"]
        for v in map(_load, VECTORS)
        if v["path"] == path
        and v["request"]["request"]["operation"] == operation
        and v["request"]["request"].get("subResource", "") == sub_resource
    ]
