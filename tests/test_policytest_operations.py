"""`csr-webhook test` operations `mutate` and `issue`, and the suite problems that are exit 2:
unknown violation codes, missing policy files, a PolicyTest given to `check`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import MakeApp
from tests.issuance_builders import root_ca, unrelated_root_ca
from webhook.authoring.generate import KeyCache
from webhook.authoring.policytest import (
    Signing,
    build_case_review,
    load_suites,
    read_outcome,
    review_response,
)
from webhook.authoring.schema_cli import build_schema
from webhook.cli import main
from webhook.policy.loader import load_policies

POLICY = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: svc}
spec:
  signerNames: ["example.com/svc"]
  rules:
    - name: services
      requesters: {serviceAccounts: ["*/*"]}
      allowed:
        dnsNames: {values: ["${sa.name}.${sa.namespace}.svc.example.com"], required: true}
        usages: ["digital signature", "server auth"]
      constraints:
        lifetime: {min: 1h, max: 24h, default: 12h, onExceed: Clamp}
  issuance:
    issuers: {serviceAccounts: ["cert-system/signer"]}
    caBundleFile: ca.pem
"""

HEAD = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: PolicyTest
metadata: {name: svc}
spec:
CA_LINE  cases:
"""

WEB = '{username: "system:serviceaccount:shop:web", groups: ["system:serviceaccounts"]}'
SIGNER = '{username: "system:serviceaccount:cert-system:signer"}'


def case(name: str, *lines: str, dns: str = "web.shop.svc.example.com", lifetime: str = "") -> str:
    expiration = f"\n        expirationSeconds: {lifetime}" if lifetime else ""
    text = f"""\
    - name: {name}
      requester: {WEB}
      csr:
        signerName: example.com/svc
        usages: ["digital signature", "server auth"]{expiration}
        request: {{dnsNames: ["{dns}"]}}
"""
    return text + "".join(f"      {line}\n" for line in lines)


def write(directory: Path, *cases: str, ca: str = "", bundle: bytes | None = None) -> Path:
    """The policy with its CA bundle (by default a CA whose key nobody has) and the suite."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "svc.yaml").write_text(POLICY)
    (directory / "ca.pem").write_bytes(bundle or root_ca().pem)
    path = directory / "svc.test.yaml"
    path.write_text(HEAD.replace("CA_LINE", f"  ca: {ca}\n" if ca else "") + "".join(cases))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["test", *args])
    return code, capsys.readouterr().out.splitlines()


# ---- mutate --------------------------------------------------------------------------------


def test_mutate_cases_expect_the_patched_lifetime_or_no_patch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        case(
            "no lifetime gets the default", "operation: mutate", "patch: {expirationSeconds: 43200}"
        ),
        case(
            "a long lifetime is clamped",
            "operation: mutate",
            "patch: {expirationSeconds: 86400}",
            lifetime="172800",
        ),
        case(
            "a lifetime within bounds is kept", "operation: mutate", "patch: none", lifetime="3600"
        ),
        case(
            "a request no rule permits is not patched",
            "operation: mutate",
            "patch: none",
            dns="db.shop.svc.example.com",
        ),
        case("wrong, expects no patch", "operation: mutate", "patch: none"),
        case(
            "wrong, expects another value",
            "operation: mutate",
            "patch: {expirationSeconds: 3600}",
            lifetime="172800",
        ),
    )
    code, lines = run(capsys, str(tmp_path))
    assert code == 1, lines
    assert [line.split()[0] for line in lines[:-1]] == ["PASS"] * 4 + ["FAIL"] * 2
    assert lines[4].endswith(
        "wrong, expects no patch: expected no patch, got allowed with patch expirationSeconds=43200"
    )
    assert lines[5].endswith(
        "expected patch expirationSeconds=3600, got allowed with patch expirationSeconds=86400"
    )
    assert lines[-1] == "4 passed, 2 failed"


def test_mutate_review_goes_to_the_mutating_path(tmp_path: Path, make_app: MakeApp) -> None:
    path = write(tmp_path, case("m", "operation: mutate", "patch: {expirationSeconds: 43200}"))
    [suite], problems = load_suites(path)
    assert problems == []
    review = build_case_review(suite.cases[0], KeyCache())
    assert review["request"]["operation"] == "CREATE"
    policies = load_policies([tmp_path]).policy_set
    assert policies is not None
    direct = review_response(review, policies, mutating=True)
    client = make_app({"svc.yaml": POLICY, "ca.pem": root_ca().pem.decode()}).test_client()
    served = client.post("/mutate", json=review).get_json()
    assert served == direct
    patch = json.loads(base64.b64decode(direct["response"]["patch"]))
    assert patch == [{"op": "add", "path": "/spec/expirationSeconds", "value": 43200}]
    assert read_outcome(direct["response"]).patch == 43200


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("expect: allowed", "spec.cases[0].expect: a mutate case has no expect"),
        ("", "spec.cases[0]: missing required field 'patch'"),
    ],
)
def test_mutate_cases_take_a_patch_not_a_verdict(
    extra: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines_in = ["operation: mutate", *([extra] if extra else [])]
    if extra:
        lines_in.append("patch: none")
    path = write(tmp_path, case("m", *lines_in))
    code, lines = run(capsys, str(path))
    assert code == 2
    assert message in lines[0], lines


def test_patch_only_for_mutate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, case("c", "expect: allowed", "patch: none"))
    code, lines = run(capsys, str(path))
    assert code == 2
    assert lines[0].endswith("spec.cases[0].patch: patch is only for operation mutate")


# ---- issue ---------------------------------------------------------------------------------

ISSUE = ("operation: issue", f"actor: {SIGNER}")


def issue(name: str, *lines: str, lifetime: str = "86400") -> str:
    """An issue case by the policy's signer, for a CSR that asks for a day (as /mutate or the
    requester would set it: the rule allows at most 24h)."""
    return case(name, *ISSUE, *lines, lifetime=lifetime)


def test_issue_cases_exercise_every_knob_of_the_issuance_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without spec.ca the run's generated CA signs and stands in for the policy's bundle."""
    cases = [
        issue("the signer issues what was asked", "expect: allowed", lifetime="86400"),
        issue(
            "defaults to the CSR lifetime",
            "certificate: {}",
            "expect: allowed",
            lifetime="3600",
        ),
        issue(
            "too long",
            "certificate: {lifetime: 25h}",
            "expect: denied",
            'violations: ["issuance.lifetime_too_long"]',
        ),
        issue(
            "an extra SAN",
            'certificate: {extraSANs: {dnsNames: ["db.shop.svc.example.com"]}}',
            "expect: denied",
            'violations: ["issuance.san_not_requested"]',
        ),
        issue(
            "a CA certificate",
            "certificate: {isCA: true}",
            "expect: denied",
            'violations: ["issuance.ca_not_allowed"]',
        ),
        issue(
            "a usage nobody asked for",
            'certificate: {usages: ["digital signature", "client auth"]}',
            "expect: denied",
            'violations: ["issuance.usage_not_requested"]',
        ),
        issue(
            "another key",
            "certificate: {key: other}",
            "expect: denied",
            'violations: ["issuance.public_key_mismatch"]',
        ),
        issue(
            "a rogue CA",
            "certificate: {signedBy: rogue}",
            "expect: denied",
            'violations: ["issuance.untrusted_issuer"]',
        ),
        case(
            "not the issuer",
            "operation: issue",
            f"actor: {WEB}",
            "expect: denied",
            'violations: ["issuance.not_issuer"]',
        ),
    ]
    write(tmp_path, *cases)
    code, lines = run(capsys, str(tmp_path))
    assert code == 0, "\n".join(lines)
    assert lines[-1] == f"{len(cases)} passed, 0 failed"


def test_issue_review_is_the_signers_status_update(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        issue(
            "i",
            'certificate: {lifetime: 2h, extraSANs: {uris: ["spiffe://x/y"]}}',
            "expect: denied",
        ),
    )
    [suite], _ = load_suites(path)
    keys, signing = KeyCache(), Signing()
    request = build_case_review(suite.cases[0], keys, signing)["request"]
    assert (request["operation"], request["subResource"]) == ("UPDATE", "status")
    assert request["userInfo"]["username"] == "system:serviceaccount:cert-system:signer"
    [approved] = request["oldObject"]["status"]["conditions"]
    assert (approved["type"], approved["status"]) == ("Approved", "True")
    assert request["object"]["status"]["conditions"] == request["oldObject"]["status"]["conditions"]
    assert request["object"]["spec"] == request["oldObject"]["spec"]
    assert "certificate" not in request["oldObject"]["status"]
    pem = base64.b64decode(request["object"]["status"]["certificate"])
    certificate = x509.load_pem_x509_certificate(pem)
    csr = x509.load_pem_x509_csr(base64.b64decode(request["object"]["spec"]["request"]))
    assert certificate.public_key() == csr.public_key()
    assert certificate.issuer == signing.ca.certificate.subject
    certificate.verify_directly_issued_by(signing.ca.certificate)
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime.total_seconds() == 2 * 3600 + 300  # 5 minutes backdated, as in-tree
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["web.shop.svc.example.com"]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://x/y"]


def test_a_ca_of_the_suite_signs_and_the_policys_own_bundle_judges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """spec.ca files (generated here, as a CI job would) keep the policy's bundle in force."""
    ca = root_ca()
    key = ca.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "ca.crt").write_bytes(ca.pem)
    (tmp_path / "ci" / "ca.key").write_bytes(key)
    cases = [
        issue("signed by the trusted CA", "expect: allowed"),
        issue(
            "signed by a rogue CA",
            "certificate: {signedBy: rogue}",
            "expect: denied",
            'violations: ["issuance.untrusted_issuer"]',
        ),
    ]
    write(tmp_path / "trusted", *cases, ca="{certificateFile: ../ci/ca.crt, keyFile: ../ci/ca.key}")
    other = write(
        tmp_path / "other",
        issue("the bundle names another CA", "expect: allowed"),
        ca="{certificateFile: ../ci/ca.crt, keyFile: ../ci/ca.key}",
        bundle=unrelated_root_ca().pem,
    )
    code, lines = run(capsys, str(tmp_path / "trusted"), str(other))
    assert code == 1, lines
    assert [line.split()[0] for line in lines[:-1]] == ["PASS", "PASS", "FAIL"]
    assert lines[2].endswith("expected allowed, got denied [issuance.untrusted_issuer]")


def test_a_ca_whose_key_does_not_match_is_a_broken_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = unrelated_root_ca().key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ca.crt").write_bytes(root_ca().pem)
    (tmp_path / "ca.key").write_bytes(key)
    path = write(
        tmp_path,
        issue("i", "expect: allowed"),
        ca="{certificateFile: ca.crt, keyFile: ca.key}",
    )
    code, lines = run(capsys, str(path))
    assert code == 2
    assert lines[0] == (
        f"{path}:5: spec.ca.keyFile: '{tmp_path / 'ca.key'}' is not the key of "
        f"'{tmp_path / 'ca.crt'}'"
    )


@pytest.mark.parametrize(
    ("lines_in", "message"),
    [
        (
            ["operation: issue", "expect: allowed"],
            "spec.cases[0]: missing required field 'actor' (the caller who may issue)",
        ),
        (
            ["certificate: {isCA: true}", "expect: allowed"],
            "spec.cases[0].certificate: certificate is only for operation issue",
        ),
        (
            [*ISSUE, "certificate: {lifetime: soon}", "expect: allowed"],
            "spec.cases[0].certificate.lifetime: 'soon' is not a duration",
        ),
        (
            [*ISSUE, 'certificate: {extraSANs: {ipAddresses: ["10.0.0.300"]}}', "expect: allowed"],
            "spec.cases[0].certificate.extraSANs.ipAddresses[0]: '10.0.0.300' is not an IP address",
        ),
    ],
)
def test_issue_case_problems_name_the_field(
    lines_in: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, case("i", *lines_in))
    code, lines = run(capsys, str(path))
    assert code == 2
    assert message in lines[0], lines


# ---- codes, policies, check, schema --------------------------------------------------------


def test_a_code_the_webhook_never_emits_is_a_broken_suite_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        case("typo", "expect: denied", 'violations: ["dns.not_alowed"]', dns="x.example.org"),
        case("family typo", "expect: denied", 'violations: ["dsn."]', dns="x.example.org"),
        case("nothing like it", "expect: denied", 'violations: ["zzz.qqq"]', dns="x.example.org"),
    )
    code, lines = run(capsys, str(path))
    assert code == 2
    text = path.read_text().splitlines()
    line = {n: i for i, t in enumerate(text, 1) for n in ("not_alowed", "dsn.", "zzz") if n in t}
    assert lines == [
        f"{path}:{line['not_alowed']}: spec.cases[0].violations[0]: the webhook never emits "
        "violation code 'dns.not_alowed'; did you mean 'dns.not_allowed'?",
        f"{path}:{line['dsn.']}: spec.cases[1].violations[0]: the webhook never emits family "
        "'dsn.'; did you mean 'dns.'?",
        f"{path}:{line['zzz']}: spec.cases[2].violations[0]: the webhook never emits "
        "violation code 'zzz.qqq'",
        "0 passed, 0 failed",
    ]


def test_a_missing_policies_entry_names_the_suite_the_field_and_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, case("c", "expect: allowed"))
    path.write_text(
        path.read_text().replace("spec:\n", "spec:\n  policies: [svc.yaml, ../gone/team.yaml]\n")
    )
    code, lines = run(capsys, str(path))
    assert code == 2
    assert lines == [
        f"{path}:5: spec.policies[1]: suite 'svc' lists policy file '../gone/team.yaml', but "
        f"'{tmp_path / '../gone/team.yaml'}' does not exist (entries are relative to the test "
        "file)",
        "0 passed, 0 failed",
    ]


def test_check_on_a_policy_test_file_says_to_use_csr_webhook_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, case("c", "expect: allowed"))
    code = main(["check", str(path), str(tmp_path / "svc.yaml")])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0] == (
        f"{path}:2: kind: {path.name} is a PolicyTest suite, not a SignerPolicy: run it with "
        f"`csr-webhook test {path}`"
    )
    assert len([line for line in out if line.startswith(str(path))]) == 1, out


def test_schema_command_knows_the_new_operations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == build_schema()
    case_schema = printed["$defs"]["PolicyTest"]["properties"]["spec"]["properties"]["cases"]
    fields = case_schema["items"]["properties"]
    assert fields["operation"]["enum"] == ["create", "mutate", "approve", "deny", "issue"]
    assert fields["patch"]["oneOf"][0] == {"enum": ["none"]}
    assert fields["certificate"]["properties"]["key"]["enum"] == ["same", "other"]


@pytest.mark.parametrize("lifetime", ["0s", "36501d", "99999999999999999999d"])
def test_an_impossible_certificate_lifetime_is_a_clear_error(
    lifetime: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, issue("i", f"certificate: {{lifetime: {lifetime}}}", "expect: denied"))
    code, lines = run(capsys, str(path))
    assert code == 2
    assert lines[0].endswith(
        "spec.cases[0].certificate.lifetime: a certificate lifetime must be between 1s and "
        f"36500d, got '{lifetime}'"
    ), lines


def test_a_huge_expiration_is_issued_for_the_signing_duration_as_in_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The in-tree signer caps at --cluster-signing-duration (8760h); so does the runner."""
    path = write(
        tmp_path,
        issue(
            "a century asked",
            "expect: denied",
            'violations: ["issuance.lifetime_too_long"]',
            lifetime="3153600000000",
        ),
    )
    code, lines = run(capsys, str(path))
    assert code == 0, lines


def test_an_issue_case_needs_a_csr_the_signer_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate request\n")
    path = write(tmp_path, issue("i", "expect: denied"))
    path.write_text(
        path.read_text().replace(
            'request: {dnsNames: ["web.shop.svc.example.com"]}', "requestFile: garbage.pem"
        )
    )
    code, lines = run(capsys, str(path))
    assert code == 2
    assert (
        "spec.cases[0].csr.requestFile: an issue case needs a CSR the signer can read" in (lines[0])
    ), lines
