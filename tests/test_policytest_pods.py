"""PolicyTest cases of `kind: PodCertificateRequest`: the reviews they send (what a kubelet
creates, what a signer writes to /status, each knob), the problems of a broken case, and their
verdicts through the server's own path."""

from __future__ import annotations

import base64
import datetime
import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from tests.issuance_builders import root_ca, unrelated_root_ca
from webhook.authoring.generate import KeyCache
from webhook.authoring.policytest import PodCase, Signing, build_case_review, run_tests
from webhook.authoring.suite import load_suites

NODE = '{username: "system:node:worker-1", groups: ["system:nodes", "system:authenticated"]}'
SIGNER = '{username: "system:serviceaccount:mesh-system:signer"}'
POD = (
    "{signerName: mesh.example.com/spiffe, namespace: team-a, name: web-0, "
    "serviceAccountName: web, nodeName: worker-1"
)
HEADER = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: PolicyTest
metadata: {name: pods}
spec:
  cases:
"""


def pod_case(name: str, *, pod: str = "", extra: str = "", expect: str = "allowed") -> str:
    lines = [
        f"    - name: {name}",
        "      kind: PodCertificateRequest",
        f"      requester: {NODE}",
        f"      pod: {POD}{', ' + pod if pod else ''}}}",
        f"      expect: {expect}",
    ]
    lines += [f"      {line}" for line in extra.splitlines()]
    return "\n".join(lines) + "\n"


def load(tmp_path: Path, *cases: str) -> list[PodCase]:
    path = tmp_path / "pods.test.yaml"
    path.write_text(HEADER + "".join(cases))
    [suite], problems = load_suites(path)
    assert problems == []
    pods = [c for c in suite.cases if isinstance(c, PodCase)]
    assert len(pods) == len(cases)
    return pods


def request_of(review: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = review["request"]
    return request


def stub_of(obj: dict[str, Any]) -> x509.CertificateSigningRequest:
    return x509.load_der_x509_csr(base64.b64decode(obj["spec"]["stubPKCS10Request"]))


def chain_of(status: dict[str, Any]) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(status["certificateChain"].encode())


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


# ---- CREATE: what a kubelet sends -----------------------------------------------------------


def test_create_review_is_the_request_a_kubelet_creates(tmp_path: Path) -> None:
    [case] = load(tmp_path, pod_case("a", pod='annotations: {"example.com/a": "b"}'))
    request = request_of(build_case_review(case, KeyCache()))
    resource = {"group": "certificates.k8s.io", "version": "v1"}
    assert request["kind"] == {**resource, "kind": "PodCertificateRequest"}
    assert request["resource"] == {**resource, "resource": "podcertificaterequests"}
    assert request["requestKind"] == request["kind"]
    assert (request["operation"], request["namespace"]) == ("CREATE", "team-a")
    assert "subResource" not in request
    assert request["userInfo"]["username"] == "system:node:worker-1"
    obj = request["object"]
    assert obj["apiVersion"] == "certificates.k8s.io/v1"
    assert obj["metadata"]["namespace"] == "team-a"
    assert obj["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "uid": obj["spec"]["podUID"]}
    ]
    assert obj["status"] == {}
    spec = obj["spec"]
    assert spec["maxExpirationSeconds"] == 86400  # the API server's default, applied at decoding
    assert spec["unverifiedUserAnnotations"] == {"example.com/a": "b"}
    assert (spec["podName"], spec["serviceAccountName"], spec["nodeName"]) == (
        "web-0",
        "web",
        "worker-1",
    )
    assert all(spec[k] for k in ("podUID", "serviceAccountUID", "nodeUID"))
    assert "pkixPublicKey" not in spec  # v1 has no such field
    stub = stub_of(obj)  # DER, as x509.CreateCertificateRequest of an empty template
    assert stub.is_signature_valid
    assert stub.subject == x509.Name([])
    assert list(stub.extensions) == []
    assert isinstance(stub.public_key(), ec.EllipticCurvePublicKey)


def test_derived_uids_are_stable_and_a_given_pod_uid_is_kept(tmp_path: Path) -> None:
    first, second, given = load(
        tmp_path, pod_case("a"), pod_case("b"), pod_case("c", pod="uid: 1234-abcd")
    )
    keys = KeyCache()
    specs = [request_of(build_case_review(c, keys))["object"]["spec"] for c in (first, second)]
    assert specs[0]["podUID"] == specs[1]["podUID"]
    assert specs[0]["nodeUID"] == specs[1]["nodeUID"]
    assert request_of(build_case_review(given, keys))["object"]["spec"]["podUID"] == "1234-abcd"


def test_stub_knobs_send_a_bad_signature_or_none(tmp_path: Path) -> None:
    bad, missing = load(
        tmp_path, pod_case("bad", pod="stub: badSignature"), pod_case("none", pod="stub: missing")
    )
    keys = KeyCache()
    assert not stub_of(request_of(build_case_review(bad, keys))["object"]).is_signature_valid
    spec = request_of(build_case_review(missing, keys))["object"]["spec"]
    assert spec["stubPKCS10Request"] is None  # a nil []byte without omitempty


@pytest.mark.parametrize("proof", ["valid", "invalid"])
def test_v1beta1_sends_pkix_public_key_and_proof_of_possession(tmp_path: Path, proof: str) -> None:
    [case] = load(tmp_path, pod_case("a", pod=f"apiVersion: v1beta1, proofOfPossession: {proof}"))
    request = request_of(build_case_review(case, KeyCache()))
    assert request["kind"]["version"] == request["resource"]["version"] == "v1beta1"
    spec = request["object"]["spec"]
    assert request["object"]["apiVersion"] == "certificates.k8s.io/v1beta1"
    assert spec["stubPKCS10Request"] is None
    key = serialization.load_der_public_key(base64.b64decode(spec["pkixPublicKey"]))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    digest = hashlib.sha256(spec["podUID"].encode()).digest()
    signature = base64.b64decode(spec["proofOfPossession"])
    algorithm = ec.ECDSA(utils.Prehashed(hashes.SHA256()))
    if proof == "valid":
        key.verify(signature, digest, algorithm)
    else:
        with pytest.raises(InvalidSignature):
            key.verify(signature, digest, algorithm)


# ---- issue: what the signer writes ----------------------------------------------------------


def issue_case(name: str, issue: str = "{}", *, pod: str = "", violation: str = "") -> str:
    extra = f"operation: issue\nactor: {SIGNER}\nissue: {issue}"
    if violation:
        extra += f'\nviolations: ["{violation}"]'
    return pod_case(name, pod=pod, extra=extra, expect="denied" if violation else "allowed")


def test_issue_review_writes_a_chain_for_the_stub_key_and_its_times(tmp_path: Path) -> None:
    [case] = load(tmp_path, issue_case("a", '{uris: ["spiffe://cluster.local/ns/team-a/sa/web"]}'))
    signing = Signing()
    request = request_of(build_case_review(case, KeyCache(), signing))
    assert (request["operation"], request["subResource"]) == ("UPDATE", "status")
    assert request["userInfo"]["username"] == "system:serviceaccount:mesh-system:signer"
    old, new = request["oldObject"], request["object"]
    assert old["status"] == {}
    assert old["spec"] == new["spec"] and old["metadata"] == new["metadata"]
    status = new["status"]
    [condition] = status["conditions"]
    assert (condition["type"], condition["status"]) == ("Issued", "True")
    assert condition["reason"] and condition["lastTransitionTime"]
    [leaf] = chain_of(status)
    assert leaf.public_key() == stub_of(new).public_key()
    leaf.verify_directly_issued_by(signing.ca.certificate)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [n.value for n in sans] == ["spiffe://cluster.local/ns/team-a/sa/web"]
    not_before, not_after = parse_time(status["notBefore"]), parse_time(status["notAfter"])
    assert (not_before, not_after) == (leaf.not_valid_before_utc, leaf.not_valid_after_utc)
    assert not_after - not_before == datetime.timedelta(hours=24)  # min(86400, 24h)
    assert not_before < parse_time(status["beginRefreshAt"]) < not_after
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_issue_knobs_change_only_what_they_name(tmp_path: Path) -> None:
    cases = load(
        tmp_path,
        issue_case("intermediate", "{viaIntermediate: true}"),
        issue_case("rogue", "{signedBy: rogue}"),
        issue_case("other key", "{key: other}"),
        issue_case("times", "{timesOffset: 1m, beginRefreshAt: 25h}"),
        issue_case("lifetime", "{lifetime: 2h}", pod="maxExpirationSeconds: 3600"),
        issue_case("denied", "{condition: Denied}"),
        issue_case("denied with chain", "{condition: Denied, chain: issued}"),
        issue_case("malformed", "{chain: malformed}"),
        issue_case("two conditions", '{extraCondition: Failed, conditionStatus: "False"}'),
        issue_case("stored", "{stored: issued}"),
    )
    keys, signing = KeyCache(), Signing()
    got = {c.name: request_of(build_case_review(c, keys, signing)) for c in cases}
    leaf, intermediate = chain_of(got["intermediate"]["object"]["status"])
    intermediate.verify_directly_issued_by(signing.ca.certificate)
    leaf.verify_directly_issued_by(intermediate)
    [rogue] = chain_of(got["rogue"]["object"]["status"])
    rogue.verify_directly_issued_by(signing.rogue.certificate)
    other = got["other key"]["object"]
    assert chain_of(other["status"])[0].public_key() != stub_of(other).public_key()
    times = got["times"]["object"]["status"]
    [leaf] = chain_of(times)
    assert parse_time(times["notBefore"]) == leaf.not_valid_before_utc + datetime.timedelta(
        minutes=1
    )
    assert parse_time(times["beginRefreshAt"]) > leaf.not_valid_after_utc
    [long] = chain_of(got["lifetime"]["object"]["status"])
    assert long.not_valid_after_utc - long.not_valid_before_utc == datetime.timedelta(hours=2)
    denied = got["denied"]["object"]["status"]
    assert list(denied) == ["conditions"] and denied["conditions"][0]["type"] == "Denied"
    assert set(got["denied with chain"]["object"]["status"]) == {
        "conditions",
        "certificateChain",
        "notBefore",
        "beginRefreshAt",
        "notAfter",
    }
    malformed = got["malformed"]["object"]["status"]["certificateChain"]
    with pytest.raises(ValueError, match="asn1"):
        x509.load_pem_x509_certificates(malformed.encode())
    conditions = got["two conditions"]["object"]["status"]["conditions"]
    assert [(c["type"], c["status"]) for c in conditions] == [
        ("Issued", "False"),
        ("Failed", "True"),
    ]
    stored = got["stored"]
    assert stored["oldObject"]["status"]["conditions"][0]["type"] == "Issued"
    assert stored["oldObject"]["status"] != stored["object"]["status"]


# ---- broken cases ---------------------------------------------------------------------------


def test_problems_of_pod_cases_name_file_case_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.test.yaml"
    text = HEADER + "".join(
        [
            pod_case("approve", extra=f"operation: approve\nactor: {SIGNER}"),
            pod_case("csr block", extra="csr: {signerName: a/b, usages: [client auth]}"),
            pod_case("issue without actor", extra="operation: issue"),
            pod_case("proof on v1", pod="proofOfPossession: valid"),
            pod_case("issue on create", extra="issue: {condition: Denied}"),
            pod_case(
                "bad SAN",
                extra=f'operation: issue\nactor: {SIGNER}\nissue: {{ipAddresses: ["10.0.0.300"]}}',
            ),
            pod_case("short", pod="maxExpirationSeconds: 600"),
            "    - name: pod on a CSR case\n"
            f"      requester: {NODE}\n"
            f"      pod: {POD}}}\n"
            "      expect: allowed\n",
        ]
    )
    path.write_text(text)
    assert run_tests([str(path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    f = str(path)

    def at(needle: str, after: str = "") -> int:
        rows = text.splitlines()
        start = next(i for i, row in enumerate(rows) if after in row) if after else 0
        return next(i for i, row in enumerate(rows) if i >= start and needle in row) + 1

    expected = [
        f"{f}:{at('maxExpirationSeconds: 600')}: spec.cases[6].pod.maxExpirationSeconds: "
        "must be at least 3600, got 600",
        f"{f}:{at('operation: approve')}: spec.cases[0].operation: a PodCertificateRequest "
        "case is create or issue, got 'approve': there is no /approval subresource, and "
        "/mutate patches nothing",
        f"{f}:{at('actor', after='approve')}: spec.cases[0].actor: actor is only for "
        "operation issue",
        f"{f}:{at('csr:')}: spec.cases[1].csr: a PodCertificateRequest case describes the "
        "request under 'pod'",
        f"{f}:{at('issue without actor')}: spec.cases[2]: missing required field 'actor' (the "
        "signer that writes /status)",
        f"{f}:{at('proofOfPossession')}: spec.cases[3].pod.proofOfPossession: pkixPublicKey "
        "and proofOfPossession exist in v1beta1 only (apiVersion: v1beta1)",
        f"{f}:{at('issue: {condition')}: spec.cases[4].issue: issue is only for operation issue",
        f"{f}:{at('10.0.0.300')}: spec.cases[5].issue.ipAddresses[0]: '10.0.0.300' is not an "
        "IP address",
        f"{f}:{at('pod on a CSR case')}: spec.cases[7]: missing required field 'csr'",
        f"{f}:{at('pod:', after='pod on a CSR case')}: spec.cases[7].pod: pod is only for "
        "kind: PodCertificateRequest",
    ]

    # Problems come in line order, with the summary last.
    def line(problem: str) -> int:
        return int(problem.removeprefix(f + ":").partition(":")[0])

    assert lines == [*sorted(expected, key=line), "0 passed, 0 failed"]


# ---- which CA judges the chain --------------------------------------------------------------

POD_POLICY = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: mesh}
spec:
  signerNames: ["mesh.example.com/spiffe"]
  podCertificates:
    issued:
      uris: ["spiffe://cluster.local/ns/${pod.namespace}/sa/${pod.serviceAccountName}"]
      usages: ["digital signature", "client auth", "server auth"]
"""
URI = '{uris: ["spiffe://cluster.local/ns/team-a/sa/web"]'


def mesh_suite(directory: Path, *cases: str, bundle: bytes | None = None, ca: str = "") -> Path:
    """The mesh policy (with `bundle` as its caBundleFile, if given) and a suite beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    policy = POD_POLICY + ("    caBundleFile: mesh-ca.pem\n" if bundle else "")
    (directory / "mesh.yaml").write_text(policy)
    if bundle:
        (directory / "mesh-ca.pem").write_bytes(bundle)
    head = HEADER.replace("spec:\n", f"spec:\n  ca: {ca}\n" if ca else "spec:\n")
    path = directory / "mesh.test.yaml"
    path.write_text(head + "".join(cases))
    return path


def outcome_lines(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, list[str]]:
    code = run_tests([str(path)])
    return code, capsys.readouterr().out.splitlines()


def test_the_runs_ca_stands_in_for_the_bundle_and_a_rogue_chain_is_untrusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = mesh_suite(
        tmp_path,
        issue_case("the run's CA", URI + "}"),
        issue_case("a rogue CA", URI + ", signedBy: rogue}", violation="pod.chain_untrusted"),
        bundle=unrelated_root_ca().pem,  # whose key nobody here has
    )
    assert outcome_lines(capsys, path) == (
        0,
        [f"PASS {path}:6: the run's CA", f"PASS {path}:14: a rogue CA", "2 passed, 0 failed"],
    )


def test_without_a_bundle_the_chains_ca_is_not_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = mesh_suite(tmp_path, issue_case("a rogue CA", URI + ", signedBy: rogue}"))
    assert outcome_lines(capsys, path) == (0, [f"PASS {path}:6: a rogue CA", "1 passed, 0 failed"])


def test_a_ca_of_the_suite_signs_and_the_policys_own_bundle_judges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = root_ca()
    key = ca.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "ca.crt").write_bytes(ca.pem)
    (tmp_path / "ci" / "ca.key").write_bytes(key)
    files = "{certificateFile: ../ci/ca.crt, keyFile: ../ci/ca.key}"
    trusted = mesh_suite(
        tmp_path / "trusted",
        issue_case("signed by the suite's CA", URI + "}"),
        issue_case("already issued", URI + ", stored: issued}", violation="pod.terminal_changed"),
        bundle=ca.pem,
        ca=files,
    )
    other = mesh_suite(
        tmp_path / "other",
        issue_case("the bundle names another CA", URI + "}"),
        bundle=unrelated_root_ca().pem,
        ca=files,
    )
    code, lines = outcome_lines(capsys, trusted)
    assert (code, [line.split()[0] for line in lines[:-1]]) == (0, ["PASS", "PASS"])
    code, lines = outcome_lines(capsys, other)
    assert code == 1
    assert lines[0].endswith("expected allowed, got denied [pod.chain_untrusted]")


# ---- the leaf's subject ---------------------------------------------------------------------


def test_issue_subject_writes_the_leafs_subject_in_order(tmp_path: Path) -> None:
    [case, empty] = load(
        tmp_path,
        issue_case("a", "{subject: {commonName: web-0, organization: [mesh, system:masters]}}"),
        issue_case("b", "{}"),
    )
    keys, signing = KeyCache(), Signing()
    [leaf] = chain_of(request_of(build_case_review(case, keys, signing))["object"]["status"])
    assert leaf.subject.rfc4514_string() == "O=system:masters,O=mesh,CN=web-0"
    [plain] = chain_of(request_of(build_case_review(empty, keys, signing))["object"]["status"])
    assert plain.subject == x509.Name([])


def test_issue_subject_is_judged_by_issued_subject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = mesh_suite(
        tmp_path,
        issue_case("no subject", URI + "}"),
        issue_case(
            "system:masters",
            URI + ", subject: {organization: system:masters}}",
            violation="pod.subject_not_allowed",
        ),
    )
    assert outcome_lines(capsys, path) == (
        0,
        [f"PASS {path}:6: no subject", f"PASS {path}:14: system:masters", "2 passed, 0 failed"],
    )
