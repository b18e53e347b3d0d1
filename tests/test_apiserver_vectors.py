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
from tests.reviews import create_review, mutating_create_review, user_info
from tests.update_reviews import approval_update, main_update, status_update, stored_csr
from webhook.authoring import generate
from webhook.policy.loader import load_policies
from webhook.serving.app import create_app
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings

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
    assert _decision(answer.get_json()) == _decision(vector["response"])


def _decision(body: dict[str, Any]) -> dict[str, Any]:
    """What the recorded answer decided: allowed or not, the violation codes and fields in
    order, the patch, the warnings' codes and the audit annotations. Wording is left out:
    messages are improved without re-recording."""
    response = body.get("response", {})
    causes = response.get("status", {}).get("details", {}).get("causes", [])
    return {
        "uid": response.get("uid"),
        "allowed": response.get("allowed"),
        "code": response.get("status", {}).get("code"),
        "causes": [(c["reason"], c["field"]) for c in causes],
        "patch": response.get("patch"),
        "warnings": [w.split(":", 1)[0] for w in response.get("warnings", [])],
        "annotations": response.get("auditAnnotations"),
    }


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


# Not compared: metadata.managedFields (the server's field-ownership bookkeeping, present only
# on some objects, read by neither the webhook nor the builders), and the options the client picks (kubectl sends a field manager and field validation, the kubelet and
# kube-controller-manager do not): present or not in a real review, never a builder's business.
CLIENT_CHOSEN = {
    "request.options.fieldManager: string",
    "request.options.fieldValidation: string",
}


def _caller(user: dict[str, Any]) -> dict[str, Any]:
    return user_info(
        user["username"], user.get("groups"), uid=user.get("uid", ""), extra=user.get("extra")
    )


def _inputs(obj: dict[str, Any]) -> dict[str, Any]:
    """The builder arguments that describe this CSR (the values the test chooses)."""
    spec, metadata = obj["spec"], obj["metadata"]
    return {
        "name": metadata.get("name"),
        "generate_name": metadata.get("generateName"),
        "signer_name": spec["signerName"],
        "usages": spec["usages"],
        "expiration_seconds": spec.get("expirationSeconds"),
    }


def _requester(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    return {
        "username": spec["username"],
        "groups": spec.get("groups"),
        "uid": spec.get("uid"),
        "extra": spec.get("extra"),
    }


def _pem(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value else None


def builder_review(vector: dict[str, Any]) -> dict[str, Any]:
    """What our builders make for the same operation, subresource, CSR and caller."""
    request = vector["request"]["request"]
    caller = _caller(request["userInfo"])
    obj = request["object"]
    pem = base64.b64decode(obj["spec"]["request"])
    dry_run = request["dryRun"]
    if vector["path"] == "/mutate":
        review = mutating_create_review(
            pem,
            requester=caller["username"],
            groups=caller.get("groups"),
            dry_run=dry_run,
            **_inputs(obj),
        )
    elif request["operation"] == "CREATE":
        requester = _requester(obj)
        review = create_review(
            pem,
            requester=requester["username"],
            groups=requester["groups"],
            uid=requester["uid"],
            extra=requester["extra"],
            dry_run=dry_run,
            **_inputs(obj),
        )
    else:
        old_status = request["oldObject"].get("status", {})
        old = stored_csr(
            pem,
            conditions=old_status.get("conditions", ()),
            certificate=_pem(old_status.get("certificate")),
            labels=request["oldObject"]["metadata"].get("labels"),
            **_requester(obj),
            **_inputs(obj),
        )
        new_status = obj.get("status", {})
        sub_resource = request.get("subResource", "")
        if sub_resource == "approval":
            review = approval_update(
                old, new_status.get("conditions", []), caller=caller, dry_run=dry_run
            )
        elif sub_resource == "status":
            review = status_update(
                old,
                certificate=_pem(new_status.get("certificate")),
                conditions=new_status.get("conditions"),
                caller=caller,
                dry_run=dry_run,
            )
        else:
            review = main_update(
                old,
                labels=obj["metadata"].get("labels"),
                annotations=obj["metadata"].get("annotations"),
                caller=caller,
                dry_run=dry_run,
            )
    review["request"]["userInfo"] = caller
    return review


def _compared(review: dict[str, Any]) -> set[str]:
    return {
        entry
        for entry in shape(review)
        if entry not in CLIENT_CHOSEN and ".metadata.managedFields" not in entry
    }


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_builders_make_the_fields_and_types_the_real_server_sends(path: Path) -> None:
    vector = _load(path)
    recorded = _compared(vector["request"])
    built = _compared(builder_review(vector))
    assert built == recorded, (
        f"builder-only: {sorted(built - recorded)}; server-only: {sorted(recorded - built)}"
    )


UPDATES = [p for p in VECTORS if _load(p)["request"]["request"]["operation"] == "UPDATE"]


@pytest.mark.parametrize("path", UPDATES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_builders_keep_the_resource_version_the_client_read(path: Path) -> None:
    """On UPDATE the real server shows both objects with the resourceVersion the client read."""
    vector = _load(path)
    for review in (vector["request"], builder_review(vector)):
        request = review["request"]
        assert (
            request["object"]["metadata"]["resourceVersion"]
            == request["oldObject"]["metadata"]["resourceVersion"]
        )


# ---- and neither may the PolicyTest generator (webhook/authoring/generate.py) ------------------


def _generated(vector: dict[str, Any]) -> dict[str, Any] | None:
    """What `csr-webhook test` builds for this review, when it builds such reviews at all: a
    validating CREATE, or an approval adding one condition to a CSR that has none, of a CSR
    with a fixed name and no labels (PolicyTest cases have no others)."""
    request = vector["request"]["request"]
    obj = request["object"]
    if vector["path"] != "/validate" or request["dryRun"]:
        return None
    if {"generateName", "labels"} & set(obj["metadata"]):
        return None
    spec = obj["spec"]
    requester = {k: spec[k] for k in ("username", "uid", "groups", "extra") if k in spec}
    csr = generate.stored_csr(
        obj["metadata"]["name"],
        base64.b64decode(spec["request"]),
        spec["signerName"],
        spec["usages"],
        spec.get("expirationSeconds"),
        requester,
    )
    if request["operation"] == "CREATE":
        return generate.create_review(csr, request["userInfo"])
    added = obj.get("status", {}).get("conditions", [])
    if (
        request.get("subResource") == "approval"
        and not request["oldObject"].get("status")
        and len(added) == 1
    ):
        return generate.approval_review(csr, added[0]["type"], request["userInfo"])
    return None


GENERATED = [p for p in VECTORS if _generated(_load(p)) is not None]


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_policytest_generator_makes_the_fields_and_types_the_real_server_sends(
    path: Path,
) -> None:
    vector = _load(path)
    generated = _generated(vector)
    assert generated is not None
    recorded, built = _compared(vector["request"]), _compared(generated)
    assert built == recorded, (
        f"generator-only: {sorted(built - recorded)}; server-only: {sorted(recorded - built)}"
    )
