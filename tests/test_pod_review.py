"""Reading PodCertificateRequest reviews: a malformed one is HTTP 400 naming the field (never
a 500), other versions are refused, and oversized stubs and chains cost linear time. Costs are
compared as ratios within one run, never as absolute times."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from tests import pod_setting as ps
from tests.test_pod_create import codes, validate
from webhook.admission import parse_review


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return ps.pod_app(tmp_path / "policies", ps.pod_policy())


def refused(app: Flask, review: dict[str, Any]) -> str:
    answer = app.test_client().post("/validate", json=review)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    return str(answer.get_json()["error"]) if answer.is_json else answer.get_data(as_text=True)


def test_parse_review_reads_a_v1_request_typed() -> None:
    review = ps.pcr_review(ps.pcr_object(unverifiedUserAnnotations={"example.com/a": "b"}))
    request = parse_review(json.dumps(review).encode())
    assert request.is_pcr and not request.is_csr
    assert request.namespace == ps.NAMESPACE
    pcr = request.pod_request
    assert pcr is not None and request.old_pod_request is None
    assert (pcr.api_version, pcr.namespace, pcr.pod_name, pcr.node_name) == (
        "v1",
        ps.NAMESPACE,
        ps.POD,
        ps.NODE,
    )
    assert pcr.stub_request == ps.stub_csr()
    assert pcr.pkix_public_key == b"" and pcr.annotations == {"example.com/a": "b"}
    assert pcr.max_expiration_seconds == 86400


def test_parse_review_reads_v1beta1_key_fields_and_bad_base64_as_none() -> None:
    obj = ps.legacy_pcr_object("ed25519", proofOfPossession="%%%")
    pcr = parse_review(json.dumps(ps.pcr_review(obj)).encode()).pod_request
    assert pcr is not None and pcr.api_version == "v1beta1"
    assert pcr.pkix_public_key == ps.pkix_public_key("ed25519")
    assert pcr.proof_of_possession is None and pcr.stub_request == b""


def _spec(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def edit(review: dict[str, Any]) -> None:
        review["request"]["object"]["spec"].update(fields)

    return edit


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(review: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = review
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_spec(maxExpirationSeconds="86400"), "request.object.spec.maxExpirationSeconds"),
        (_spec(maxExpirationSeconds=True), "request.object.spec.maxExpirationSeconds"),
        (_spec(podName=5), "request.object.spec.podName"),
        (_spec(stubPKCS10Request=["x"]), "request.object.spec.stubPKCS10Request"),
        (_spec(unverifiedUserAnnotations={"a.io/b": 1}), "spec.unverifiedUserAnnotations"),
        (_spec(unverifiedUserAnnotations=["a"]), "spec.unverifiedUserAnnotations"),
        (_set("request.object.spec", "x"), "request.object.spec must be an object"),
        (_set("request.object.status", {"conditions": "x"}), "request.object.status.conditions"),
        (_set("request.object.status", {"conditions": [5]}), "status.conditions[0]"),
        (_set("request.object.status", {"notBefore": 5}), "request.object.status.notBefore"),
        (_set("request.object.status", {"certificateChain": 5}), "status.certificateChain"),
        (_set("request.object.metadata", {"namespace": "other"}), "request.namespace"),
        (_set("request.object.apiVersion", "certificates.k8s.io/v1beta1"), "apiVersion"),
        (_set("request.resource.version", "v1alpha1"), "request.resource.version 'v1alpha1'"),
        (_set("request.namespace", 7), "request.namespace must be a string"),
    ],
)
def test_a_malformed_request_is_400_naming_the_field(
    app: Flask, edit: Callable[[dict[str, Any]], None], named: str
) -> None:
    review = ps.pcr_review(ps.pcr_object())
    edit(review)
    assert named in refused(app, review)


def test_an_update_without_the_stored_object_is_400(app: Flask) -> None:
    review = ps.pcr_review(ps.pcr_object(), operation="UPDATE", sub_resource="status")
    assert "request.oldObject is required" in refused(app, review)


def test_a_malformed_stored_object_is_400_naming_old_object(app: Flask) -> None:
    old = ps.pcr_object()
    old["spec"]["nodeName"] = ["worker-1"]
    review = ps.pcr_review(ps.pcr_object(), operation="UPDATE", old=old)
    assert "request.oldObject.spec.nodeName must be a string" in refused(app, review)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "spec.signerName", "spec.podUID", "spec.maxExpirationSeconds", "spec.stubPKCS10Request",
    "spec.unverifiedUserAnnotations", "status.conditions", "status.certificateChain",
    "status.notBefore", "status.beginRefreshAt", "metadata.namespace", "spec", "status",
]  # fmt: skip


@given(field=st.sampled_from(FIELDS), value=JSON, status=st.booleans())
def test_any_value_in_any_field_is_an_answer_or_a_400_never_a_500(
    tmp_path_factory: pytest.TempPathFactory, field: str, value: Any, status: bool
) -> None:
    app = ps.pod_app(tmp_path_factory.mktemp("p"), ps.pod_policy())
    stored = ps.pcr_object()
    obj = copy.deepcopy(stored)
    section, _, key = field.partition(".")
    if key:
        target = obj.setdefault(section, {})
        if isinstance(target, dict):
            target[key] = value
    else:
        obj[section] = value
    review = (
        ps.pcr_review(obj, operation="UPDATE", sub_resource="status", old=stored)
        if status
        else ps.pcr_review(obj)
    )
    answer = app.test_client().post("/validate", json=review)
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)


def _cpu(action: Callable[[], Any], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


BLOCK = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"


def _chain_review(chain: str) -> dict[str, Any]:
    status = ps.issued_status(ps.leaf_pem())
    status["certificateChain"] = chain
    return ps.status_review(ps.pcr_object(), status)


def test_a_megabyte_chain_and_ten_thousand_blocks_are_refused_in_linear_time(app: Flask) -> None:
    megabyte = _chain_review("x" * (1024 * 1024))
    response = validate(app, megabyte)
    assert codes(response) == ["pod.chain_invalid"]
    assert "at most 102400" in response["status"]["message"]
    many = _chain_review(BLOCK * 10_000)
    assert codes(validate(app, many)) == ["pod.chain_invalid"]
    within = _chain_review(BLOCK * 1_000)  # under 100 KiB: the block count refuses it
    response = validate(app, within)
    assert codes(response) == ["pod.chain_invalid"]
    assert "1000 PEM blocks" in response["status"]["message"]
    small = _chain_review(BLOCK * 100)
    ratio = _cpu(lambda: validate(app, many)) / _cpu(lambda: validate(app, small))
    print(f"10 000 vs 100 PEM blocks: {ratio:.1f}x the CPU time")
    assert ratio < 300, f"100x the blocks cost {ratio:.1f}x"


def test_a_huge_stub_is_refused_before_it_is_parsed(app: Flask) -> None:
    huge = ps.pcr_review(ps.pcr_object(stubPKCS10Request=ps.b64(b"\x30" * (1024 * 1024))))
    normal = ps.pcr_review(ps.pcr_object())
    response = validate(app, huge)
    assert codes(response) == ["pod.stub_invalid"]
    assert "1048576 bytes; at most 10240" in response["status"]["message"]
    ratio = _cpu(lambda: validate(app, huge)) / _cpu(lambda: validate(app, normal))
    print(f"a 1 MiB stub: {ratio:.1f}x the CPU time of a real one")
    assert ratio < 1000
