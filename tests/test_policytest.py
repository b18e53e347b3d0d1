"""`csr-webhook test`: PolicyTest suites (docs/policy-tests.md) run through the server's own engine."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import MakeApp
from webhook.authoring.generate import KeyCache
from webhook.authoring.issue import SigningCA
from webhook.authoring.policytest import (
    PodCase,
    Signing,
    build_case_review,
    load_suites,
    read_outcome,
    review_response,
    with_ca_bundle,
)
from webhook.cli import main
from webhook.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "policies"

POLICY = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: example}
spec:
  signerNames: ["example.com/signer"]
  enforcement: ENFORCEMENT
  rules:
    - name: clients
      requesters: {groups: ["system:authenticated"]}
      allowed:
        subject:
          commonName: {values: ["*"], required: true}
          organization: {values: ["dev", "ops"]}
        dnsNames: {values: ["*.example.com"]}
        usages: ["digital signature", "client auth"]
  approval:
    approvers: {groups: ["approvers"]}
    selfApproval: Deny
"""

HEAD = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: PolicyTest
metadata: {name: example}
spec:
  cases:
"""

ALICE = '{username: alice, groups: ["approvers", "system:authenticated"]}'


def case(name: str, expect: str, *, extra: str = "", request: str = "") -> str:
    """One case for example.com/signer; `extra` lines go after `expect`."""
    request = request or "request: {subject: {commonName: alice}}"
    text = f"""\
    - name: {name}
      requester: {ALICE}
      csr:
        signerName: example.com/signer
        usages: ["digital signature", "client auth"]
        {request}
      expect: {expect}
"""
    return text + "".join(f"      {line}\n" for line in extra.splitlines())


def write_suite(
    directory: Path, *cases: str, name: str = "example.test.yaml", enforcement: str = "Deny"
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "example.yaml").write_text(POLICY.replace("ENFORCEMENT", enforcement))
    path = directory / name
    path.write_text(HEAD + "".join(cases))
    return path


def line_of(path: Path, needle: str, after: str = "") -> int:
    """The first line holding `needle` (after the first line holding `after`)."""
    lines = path.read_text().splitlines()
    start = line_of(path, after) if after else 0
    return next(n for n, line in enumerate(lines, 1) if n > start and needle in line)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["test", *args])
    return code, capsys.readouterr().out.splitlines()


# ---- shipped suites -------------------------------------------------------------------------


def test_every_shipped_policy_has_a_suite_with_allow_and_deny_cases() -> None:
    """For what the policy governs: CSRs (create, mutate, approve, issue) when it has rules,
    PodCertificateRequests (create, issue) when it has podCertificates; each allowed and
    denied, at CREATE and at issue."""
    policies = sorted(p for p in SHIPPED.glob("*.yaml") if not p.name.endswith(".test.yaml"))
    for policy in policies:
        [loaded] = load_policies([policy]).policy_set.policies  # type: ignore[union-attr]
        suite_file = policy.with_name(policy.stem + ".test.yaml")
        [suite], problems = load_suites(suite_file)
        assert problems == []
        kinds = {"csr": bool(loaded.rules), "pod": loaded.pod_certificates is not None}
        assert any(kinds.values()), policy
        for kind, operations in (("csr", {"mutate", "approve"}), ("pod", set())):
            if not kinds[kind]:
                continue
            cases = [c for c in suite.cases if isinstance(c, PodCase) is (kind == "pod")]
            assert {"create", "issue", *operations} <= {c.operation for c in cases}, suite_file
            for operation in ("create", "issue"):
                verdicts = {c.expect for c in cases if c.operation == operation}
                assert {"allowed", "denied"} <= verdicts, (suite_file, kind, operation)


def test_shipped_suites_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(capsys, str(SHIPPED))
    assert code == 0, "\n".join(lines)
    assert all(line.startswith(f"PASS {SHIPPED}/") for line in lines[:-1])
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"


def test_installed_command_runs_the_shipped_suites() -> None:
    command = Path(sys.executable).parent / "csr-webhook"
    result = subprocess.run(
        [str(command), "test", "policies"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"
    assert lines[0].startswith("PASS policies/kube-apiserver-client-kubelet.test.yaml:")


def trusting(text: str, ca: SigningCA) -> str:
    """A policy file with `ca` in place of each PEM certificate of its CA bundles, as the
    runner substitutes the run's CA for them (with_ca_bundle)."""
    pem = ca.certificate.public_bytes(serialization.Encoding.PEM).decode().strip()

    def indented(match: re.Match[str]) -> str:
        return "\n".join(match.group(1) + line for line in pem.splitlines())

    block = r"( *)-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----"
    return re.sub(block, indented, text, flags=re.DOTALL)


def test_runner_and_validate_endpoint_agree_on_every_shipped_case(make_app: MakeApp) -> None:
    signing = Signing()
    files = {p.name: trusting(p.read_text(), signing.ca) for p in SHIPPED.glob("*.yaml")}
    client = make_app(files).test_client()
    loaded = load_policies([SHIPPED]).policy_set
    assert loaded is not None
    policy_set = with_ca_bundle(loaded, signing.ca)
    keys = KeyCache()
    seen = set()
    for suite_file in sorted(SHIPPED.glob("*.test.yaml")):
        [suite], _ = load_suites(suite_file)
        for test_case in suite.cases:
            review = build_case_review(test_case, keys, signing)
            mutating = test_case.operation == "mutate"
            served = client.post("/mutate" if mutating else "/validate", json=review)
            assert served.status_code == 200
            # The served app has no cluster facts (webhook.cluster gives them in a cluster):
            # with none on both sides the two paths agree; the case's facts give its verdict.
            direct = review_response(review, policy_set, mutating=mutating)
            assert served.get_json() == direct, test_case.name
            judged = review_response(review, policy_set, mutating=mutating, facts=test_case.facts)
            outcome = read_outcome(judged["response"])
            assert outcome.verdict == test_case.expect, test_case.name
            assert outcome.patch == test_case.patch, test_case.name
            kind = "pod" if isinstance(test_case, PodCase) else "csr"
            seen.add((kind, test_case.operation, outcome.verdict, outcome.patch is not None))
    assert seen >= {
        ("csr", "create", "allowed", False),
        ("csr", "create", "denied", False),
        ("csr", "approve", "denied", False),
        ("csr", "mutate", "allowed", True),
        ("csr", "mutate", "allowed", False),
        ("csr", "issue", "allowed", False),
        ("csr", "issue", "denied", False),
        ("pod", "create", "allowed", False),
        ("pod", "create", "denied", False),
        ("pod", "issue", "allowed", False),
        ("pod", "issue", "denied", False),
    }


# ---- output and exit codes ------------------------------------------------------------------


def test_prints_pass_and_fail_lines_and_exits_1_on_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(
        tmp_path,
        case("a plain client certificate", "allowed"),
        case(
            "a name outside the allow-list",
            "denied",
            extra='violations: ["dns.not_allowed"]',
            request='request: {subject: {commonName: alice}, dnsNames: ["a.example.org"]}',
        ),
        case("expected denied but allowed", "denied"),
        case(
            "wrong code",
            "denied",
            extra='violations: ["dns.not_allowed"]',
            request="request: {subject: {commonName: alice, organization: qa}}",
        ),
    )
    code, lines = run(capsys, str(tmp_path))
    assert code == 1
    where = str(path)
    assert lines == [
        f"PASS {where}:{line_of(path, 'a plain client')}: a plain client certificate",
        f"PASS {where}:{line_of(path, 'outside the allow')}: a name outside the allow-list",
        f"FAIL {where}:{line_of(path, 'but allowed')}: expected denied but allowed: "
        "expected denied, got allowed",
        f"FAIL {where}:{line_of(path, 'wrong code')}: wrong code: "
        "expected denied [dns.not_allowed], got denied [subject.not_allowed] "
        "(missing dns.not_allowed)",
        "2 passed, 2 failed",
    ]


def test_families_match_any_code_that_starts_with_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_names = 'request: {subject: {commonName: alice}, dnsNames: ["a.example.org", "x..y"]}'
    path = write_suite(
        tmp_path,
        case("family", "denied", extra='violations: ["dns."]', request=two_names),
        case("code and family", "denied", extra='violations: ["dns.", "csr."]', request=two_names),
        case("absent family", "denied", extra='violations: ["dns.", "uri."]', request=two_names),
    )
    code, lines = run(capsys, str(path))
    assert code == 1
    assert lines[0].startswith("PASS ")
    assert lines[1].startswith("PASS ")
    assert lines[2].startswith("FAIL ")
    assert lines[2].endswith("(missing uri.)")
    assert "expected denied [dns., uri.], got denied [" in lines[2]
    assert lines[-1] == "2 passed, 1 failed"


def test_warned_and_audited_verdicts_come_from_the_audit_annotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "request: {subject: {commonName: alice, organization: qa}}"
    write_suite(
        tmp_path / "warn",
        case("warned", "warned", extra='violations: ["subject.not_allowed"]', request=bad),
        enforcement="Warn",
    )
    write_suite(
        tmp_path / "audit",
        case("audited", "audited", extra='violations: ["subject."]', request=bad),
        case("not denied", "denied", request=bad),
        enforcement="Audit",
    )
    code, lines = run(capsys, str(tmp_path / "warn"), str(tmp_path / "audit"))
    assert code == 1
    assert [line.split()[0] for line in lines[:3]] == ["PASS", "PASS", "FAIL"]
    assert lines[2].endswith("not denied: expected denied, got audited [subject.not_allowed]")


def test_request_file_relative_to_the_test_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())  # in memory only: just the CSR is written
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")]))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "csrs").mkdir()
    (tmp_path / "csrs" / "alice.pem").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "csrs" / "garbage.pem").write_text("not a certificate request\n")
    write_suite(
        tmp_path,
        case("from a PEM file", "allowed", request="requestFile: csrs/alice.pem"),
        case(
            "a broken PEM file",
            "denied",
            extra='violations: ["csr."]',
            request="requestFile: csrs/garbage.pem",
        ),
    )
    code, lines = run(capsys, str(tmp_path))
    assert code == 0, lines
    assert lines[-1] == "2 passed, 0 failed"


@pytest.mark.parametrize(
    "key", ["rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519"]
)
def test_generates_every_key_type(
    key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = f"request: {{key: {key}, subject: {{commonName: alice, organization: [dev, ops]}}}}"
    write_suite(tmp_path, case(key, "allowed", request=request))
    code, lines = run(capsys, str(tmp_path))
    assert (code, lines[-1]) == (0, "1 passed, 0 failed"), lines


def test_approve_and_deny_operations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    carol = 'actor: {username: carol, groups: ["approvers"]}'
    self_actor = f"actor: {ALICE}"
    dave = "actor: {username: dave}"
    write_suite(
        tmp_path,
        case("an approver approves", "allowed", extra=f"operation: approve\n{carol}"),
        case(
            "self-approval is denied",
            "denied",
            extra=f'operation: approve\n{self_actor}\nviolations: ["approval.self_approval"]',
        ),
        case(
            "a non-approver may not deny",
            "denied",
            extra=f'operation: deny\n{dave}\nviolations: ["approval.not_approver"]',
        ),
        case("denying one's own CSR is allowed", "allowed", extra=f"operation: deny\n{self_actor}"),
        case(
            "approving a CSR the policy denies fails the recheck",
            "denied",
            extra=f'operation: approve\n{carol}\nviolations: ["approval.recheck_failed", "dns."]',
            request='request: {subject: {commonName: alice}, dnsNames: ["a.example.org"]}',
        ),
    )
    code, lines = run(capsys, str(tmp_path))
    assert code == 0, lines
    assert lines[-1] == "5 passed, 0 failed"


def test_approval_review_is_an_update_of_the_approval_subresource(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path, case("approve", "allowed", extra="operation: approve\nactor: {username: carol}")
    )
    [suite], _ = load_suites(path)
    request = build_case_review(suite.cases[0], KeyCache())["request"]
    assert (request["operation"], request["subResource"]) == ("UPDATE", "approval")
    assert request["userInfo"]["username"] == "carol"
    assert request["oldObject"]["status"] == {}
    assert request["object"]["spec"] == request["oldObject"]["spec"]
    assert request["object"]["spec"]["username"] == "alice"
    [condition] = request["object"]["status"]["conditions"]
    assert (condition["type"], condition["status"]) == ("Approved", "True")
    assert condition["lastUpdateTime"] and condition["lastTransitionTime"]


def test_mutate_review_carries_the_object_as_the_client_sent_it(tmp_path: Path) -> None:
    # the API server calls mutating webhooks before PrepareForCreate: no spec identity, uid or
    # creationTimestamp yet; the requester is only in request.userInfo
    text = case("mutate", "allowed", extra="operation: mutate\npatch: none")
    path = write_suite(tmp_path, text.replace("      expect: allowed\n", ""))
    [suite], _ = load_suites(path)
    request = build_case_review(suite.cases[0], KeyCache())["request"]
    assert request["operation"] == "CREATE" and request["userInfo"]["username"] == "alice"
    assert not {"username", "uid", "groups", "extra"} & set(request["object"]["spec"])
    assert set(request["object"]["metadata"]) == {"name"}


# ---- broken suites --------------------------------------------------------------------------


def test_schema_problems_are_reported_with_file_and_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(
        tmp_path,
        case("unknown key", "allowed", extra="colour: blue"),
        case("bad verdict", "rejected"),
        case("approve without actor", "allowed", extra="operation: approve"),
        case("bad address", "allowed", request='request: {ipAddresses: ["10.0.0.300"]}'),
        case("both sources", "allowed", request="requestFile: a.pem\n        request: {}"),
        case("bad code", "denied", extra='violations: ["DNS"]'),
        case("allowed with codes", "allowed", extra='violations: ["dns.not_allowed"]'),
    )
    code, lines = run(capsys, str(path))
    assert code == 2
    f = str(path)
    codes_line = 'violations: ["dns.not_allowed"]'
    assert lines == [
        f"{f}:{line_of(path, 'colour')}: spec.cases[0].colour: unknown field 'colour' (known: "
        "name, kind, requester, operation, actor, csr, pod, certificate, issue, expect, "
        "violations, patch, cluster)",
        f"{f}:{line_of(path, 'rejected')}: spec.cases[1].expect: must be one of 'allowed', "
        "'denied', 'warned', 'audited', got 'rejected'",
        f"{f}:{line_of(path, 'approve without')}: spec.cases[2]: missing required field 'actor' "
        "(the caller who may approve)",
        f"{f}:{line_of(path, '10.0.0.300')}: spec.cases[3].csr.request.ipAddresses[0]: "
        "'10.0.0.300' is not an IP address",
        f"{f}:{line_of(path, 'csr:', after='both sources')}: spec.cases[4].csr: give exactly one of 'request' "
        "(generated) and 'requestFile'",
        f"{f}:{line_of(path, 'DNS')}: spec.cases[5].violations[0]: 'DNS' is neither a code like "
        "'dns.not_allowed' nor a family like 'dns.'",
        f"{f}:{line_of(path, codes_line)}: spec.cases[6].violations: an allowed request "
        "carries no violations",
        "0 passed, 0 failed",
    ]


def test_a_broken_suite_does_not_stop_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_suite(tmp_path, case("fine", "allowed"), name="a.test.yaml")
    (tmp_path / "b.test.yaml").write_text("kind: PolicyTest\nspec: [\n")
    code, lines = run(capsys, str(tmp_path))
    assert code == 2
    assert lines[0].startswith("PASS ") and lines[0].endswith("a.test.yaml:6: fine")
    assert lines[1].startswith(
        f"{tmp_path / 'b.test.yaml'}:2:7: YAML syntax error: '[' is not closed"
    )
    assert lines[-1] == "1 passed, 0 failed"


def test_policies_that_do_not_load_fail_every_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(tmp_path, case("one", "allowed"), case("two", "denied"))
    (tmp_path / "example.yaml").write_text(POLICY.replace("ENFORCEMENT", "Maybe"))
    code, lines = run(capsys, str(path))
    assert code == 1
    assert lines[0] == (
        f"{tmp_path / 'example.yaml'}:6: spec.enforcement: must be one of 'Deny', 'Warn', "
        "'Audit', got 'Maybe'"
    )
    assert lines[1].startswith("FAIL ")
    assert lines[1].endswith(": one: not run: the policies did not load (1 problem(s))")
    assert lines[-1] == "0 passed, 2 failed"


def test_policies_list_is_relative_to_the_test_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_suite(tmp_path / "policies", case("x", "allowed"))
    (tmp_path / "policies" / "example.test.yaml").unlink()
    suite = (HEAD + case("listed policy", "allowed")).replace(
        "spec:\n", "spec:\n  policies: [../policies/example.yaml]\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "x.test.yml").write_text(suite)
    code, lines = run(capsys, str(tmp_path / "tests"))
    assert (code, lines[-1]) == (0, "1 passed, 0 failed"), lines


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_no_test_files_is_exit_2(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nowhere" if kind == "missing" else tmp_path
    code, lines = run(capsys, str(target))
    assert code == 2
    message = {
        "missing": "no such file or directory",
        "empty": "no *.test.yaml or *.test.yml files",
    }
    assert lines == [f"{target}:1: {message[kind]}", "0 passed, 0 failed"]


def test_an_empty_test_file_is_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.test.yaml").write_text("# nothing yet\n")
    code, lines = run(capsys, str(tmp_path))
    assert (code, lines) == (
        2,
        [f"{tmp_path / 'empty.test.yaml'}:1: no PolicyTest document", "0 passed, 0 failed"],
    )


def test_no_key_material_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    write_suite(
        work,
        case("ecdsa", "allowed"),
        case("rsa", "allowed", request="request: {key: rsa-2048, subject: {commonName: a}}"),
        case("ed25519", "allowed", request="request: {key: ed25519, subject: {commonName: a}}"),
        case("issued by a generated CA", "allowed", extra="operation: issue\nactor: {username: s}"),
        case(
            "by a rogue CA for another key",
            "denied",
            extra="operation: issue\nactor: {username: s}\n"
            "certificate: {signedBy: rogue, key: other}\n"
            'violations: ["issuance.public_key_mismatch"]',
        ),
    )
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    code, lines = run(capsys, ".")
    assert (code, lines[-1]) == (0, "5 passed, 0 failed"), lines
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    assert not any("PRIVATE KEY" in line for line in lines)


def test_cluster_facts_naming_a_node_or_a_count_twice_are_a_broken_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = (
        "cluster:\n"
        "  nodes: [{name: worker-1}, {name: worker-1}]\n"
        "  pendingCSRs:\n"
        "    - {signerName: example.com/signer, username: alice, count: 1}\n"
        "    - {signerName: example.com/signer, username: alice, count: 2}"
    )
    path = write_suite(tmp_path, case("twice", "allowed", extra=cluster))
    code, lines = run(capsys, str(path))
    f = str(path)
    assert code == 2
    assert lines == [
        f"{f}:{line_of(path, 'nodes:')}: spec.cases[0].cluster.nodes[1].name: "
        "duplicate Node 'worker-1'",
        f"{f}:{line_of(path, 'count: 2')}: spec.cases[0].cluster.pendingCSRs[1]: signer "
        "'example.com/signer' and username 'alice' are counted twice",
        "0 passed, 0 failed",
    ]
