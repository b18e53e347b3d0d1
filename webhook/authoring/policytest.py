"""`csr-webhook test`: run PolicyTest suites (`*.test.yaml`, loaded by `suite`) through the
server's engine.

Each case becomes the AdmissionReview kube-apiserver would send: create, approve and deny to
/validate, mutate to /mutate, issue as the signer's /status update with a certificate made for
the case. It goes through parse_review -> engine.evaluate -> build_response, and its verdict
(or patch) is read from the response. Exit 0: every case passed; 1: a case failed or a suite's
policies did not load; 2: a test file is broken or missing (each problem printed as
`file:line: path: message`). 2 wins over 1.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from webhook.admission import parse_review
from webhook.authoring import generate, reviews
from webhook.authoring.generate import KeyCache, RequestSpec
from webhook.authoring.issue import SigningCA, generate_ca, issue_certificate
from webhook.authoring.pod_case_review import build_pod_review
from webhook.authoring.pod_suite import PodCase
from webhook.authoring.suite import Case, Suite, find_test_files, load_suites
from webhook.engine import EngineOptions, evaluate
from webhook.facts import NO_CLUSTER, ClusterFacts
from webhook.policy.loader import load_policies
from webhook.policy.model import PolicySet, SignerPolicy
from webhook.policy.source import Problem
from webhook.response import AdmissionReviewResponse, build_response

__all__ = [
    "Case",
    "Outcome",
    "PodCase",
    "Signing",
    "Suite",
    "build_case_review",
    "judge",
    "load_suites",
    "read_outcome",
    "review_response",
    "run_tests",
]

_CONDITION = {"approve": "Approved", "deny": "Denied"}
_LIFETIME_PATH = "/spec/expirationSeconds"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the webhook answered: verdict (allowed|denied|warned|audited), violation codes, and
    for /mutate the expirationSeconds its patch sets (None: no patch)."""

    verdict: str
    codes: tuple[str, ...] = ()
    patch: int | None = None


class Signing:
    """The CAs of one run, generated on first use and kept in memory: `ca` signs issue cases of
    suites without `spec.ca` and stands in for their policies' CA bundles; `rogue` is trusted
    by nothing. `other_keys` are keys no CSR of the run was made with (`key: other`)."""

    def __init__(self) -> None:
        self._ca: SigningCA | None = None
        self._rogue: SigningCA | None = None
        self.other_keys = KeyCache()

    @property
    def ca(self) -> SigningCA:
        if self._ca is None:
            self._ca = generate_ca("csr-webhook policy test CA")
        return self._ca

    @property
    def rogue(self) -> SigningCA:
        if self._rogue is None:
            self._rogue = generate_ca("csr-webhook policy test rogue CA")
        return self._rogue


def build_case_review(
    case: Case | PodCase,
    keys: KeyCache,
    signing: Signing | None = None,
    *,
    ca: SigningCA | None = None,
) -> dict[str, Any]:
    """The AdmissionReview kube-apiserver sends the webhook for this case. An issue case's
    certificate (or chain) is signed by `ca` (default: the run's generated CA) or the rogue
    CA."""
    if isinstance(case, PodCase):
        signing = signing or Signing()
        trusted = ca or signing.ca
        rogue = case.issue is not None and case.issue.signed_by == "rogue"
        return build_pod_review(
            case,
            keys,
            signer=signing.rogue if rogue else trusted,
            trusted=trusted,
            other_keys=signing.other_keys,
        )
    if isinstance(case.request, RequestSpec):
        pem = generate.build_request_pem(case.request, keys)
    else:
        pem = case.request
    sent = reviews.sent_csr(
        pem,
        name=f"policytest-{case.index + 1}",
        signer_name=case.signer_name,
        usages=case.usages,
        expiration_seconds=case.expiration_seconds,
    )
    if case.operation == "mutate":
        return reviews.mutating_create_review(sent, case.requester)
    if case.operation == "create":
        return reviews.create_review(sent, case.requester)
    created = reviews.created_csr(sent, case.requester)
    assert case.actor is not None
    if case.operation != "issue":
        pending = reviews.stored_csr(created, resource_version="1")
        added = _decision(_CONDITION[case.operation])
        return reviews.approval_review(pending, [added], case.actor)
    assert case.certificate is not None
    signing = signing or Signing()
    signer = signing.rogue if case.certificate.signed_by == "rogue" else (ca or signing.ca)
    certificate = issue_certificate(
        x509.load_pem_x509_csr(pem),
        case.certificate,
        case.usages,
        case.expiration_seconds,
        signer,
        signing.other_keys,
    )
    approved = reviews.stored_csr(created, conditions=[_decision("Approved")], resource_version="1")
    return reviews.status_review(approved, case.actor, certificate=certificate)


def _decision(condition_type: str) -> dict[str, Any]:
    """The condition an `approve` or `deny` case adds (and an `issue` case's CSR carries)."""
    verb = "approved" if condition_type == "Approved" else "denied"
    return reviews.condition(
        condition_type,
        reason=f"PolicyTest{condition_type}",
        message=f"This CSR was {verb} by a csr-webhook policy test.",
    )


def review_response(
    review: Mapping[str, Any],
    policies: PolicySet,
    options: EngineOptions | None = None,
    *,
    mutating: bool = False,
    facts: ClusterFacts = NO_CLUSTER,
) -> AdmissionReviewResponse:
    """Exactly the /validate (or /mutate) path of the server, minus HTTP: parse, evaluate,
    build; `facts` stands in for the cluster."""
    admission = parse_review(json.dumps(review).encode())
    decision = evaluate(
        admission, policies, options or EngineOptions(), facts=facts, mutating=mutating
    )
    return build_response(admission.uid, decision, mutating=mutating)


def read_outcome(response: Mapping[str, Any]) -> Outcome:
    """`allowed: false` is denied with the codes of status.details.causes; otherwise the
    verdict is auditAnnotations.decision (allowed when absent), codes its `violations`, and
    the patch's expirationSeconds, if it sets one."""
    if not response.get("allowed"):
        causes = response.get("status", {}).get("details", {}).get("causes", [])
        return Outcome("denied", tuple(dict.fromkeys(c["reason"] for c in causes)))
    annotations = response.get("auditAnnotations", {})
    codes = [c for c in annotations.get("violations", "").split(",") if c]
    patch = None
    if "patch" in response:
        operations = json.loads(base64.b64decode(response["patch"]))
        patch = next((op["value"] for op in operations if op.get("path") == _LIFETIME_PATH), None)
    return Outcome(annotations.get("decision", "allowed"), tuple(dict.fromkeys(codes)), patch)


def judge(case: Case | PodCase, outcome: Outcome) -> str | None:
    """None when the outcome meets the expectation, else what came out instead."""
    if case.operation == "mutate":
        if outcome.verdict == "allowed" and outcome.patch == case.patch:
            return None
        return f"expected {_patch(case.patch)}, got {outcome.verdict} with {_patch(outcome.patch)}"
    missing = [v for v in case.violations if not _seen(v, outcome.codes)]
    if outcome.verdict == case.expect and not missing:
        return None
    expected = case.expect + (f" [{', '.join(case.violations)}]" if case.violations else "")
    got = outcome.verdict + (f" [{', '.join(outcome.codes)}]" if outcome.codes else "")
    text = f"expected {expected}, got {got}"
    return text + (f" (missing {', '.join(missing)})" if missing else "")


def _patch(value: int | None) -> str:
    return "no patch" if value is None else f"patch expirationSeconds={value}"


def _seen(wanted: str, codes: Sequence[str]) -> bool:
    if wanted.endswith("."):
        return any(code.startswith(wanted) for code in codes)
    return wanted in codes


def with_ca_bundle(policies: PolicySet, ca: SigningCA) -> PolicySet:
    """The set with `ca` in place of every CA bundle a policy has (issuance and
    podCertificates): the suite tests what a policy does with a certificate, not which CA the
    cluster uses."""
    return PolicySet(tuple(_with_ca(p, ca.der) for p in policies.policies), policies.digest)


def _with_ca(policy: SignerPolicy, der: bytes) -> SignerPolicy:
    if policy.issuance.ca_certificates_der:
        issuance = dataclasses.replace(policy.issuance, ca_certificates_der=(der,))
        policy = dataclasses.replace(policy, issuance=issuance)
    pods = policy.pod_certificates
    if pods is not None and pods.ca_certificates_der:
        pods = dataclasses.replace(pods, ca_certificates_der=(der,))
        policy = dataclasses.replace(policy, pod_certificates=pods)
    return policy


def run_tests(paths: Sequence[str], out: Callable[[str], None] = print) -> int:
    """Run every suite under `paths`; print PASS/FAIL per case and `N passed, M failed`."""
    files, broken = find_test_files([Path(p) for p in paths])
    for problem in broken:
        out(str(problem))
    keys, signing = KeyCache(), Signing()
    loaded: dict[tuple[Path, ...], tuple[PolicySet | None, list[Problem]]] = {}
    passed = failed = 0
    for file in files:
        suites, problems = load_suites(file)
        for problem in problems:
            out(str(problem))
        broken.extend(problems)
        for suite in suites:
            if suite.policies not in loaded:
                loaded[suite.policies] = _load(suite.policies)
                for problem in loaded[suite.policies][1]:
                    out(str(problem))
            policies, load_problems = loaded[suite.policies]
            if policies is not None and suite.ca is None:
                policies = with_ca_bundle(policies, signing.ca)
            for case in suite.cases:
                if policies is None:
                    failure: str | None = (
                        f"not run: the policies did not load ({len(load_problems)} problem(s))"
                    )
                else:
                    review = build_case_review(case, keys, signing, ca=suite.ca)
                    response = review_response(
                        review, policies, mutating=case.operation == "mutate", facts=case.facts
                    )
                    failure = judge(case, read_outcome(response["response"]))
                if failure is None:
                    passed += 1
                    out(f"PASS {case.where}: {case.name}")
                else:
                    failed += 1
                    out(f"FAIL {case.where}: {case.name}: {failure}")
    out(f"{passed} passed, {failed} failed")
    if broken:
        return 2
    return 1 if failed else 0


def _load(paths: tuple[Path, ...]) -> tuple[PolicySet | None, list[Problem]]:
    result = load_policies(paths)
    if result.policy_set is not None and not result.policy_set.policies:
        where = ", ".join(str(p) for p in paths)
        return None, [Problem(where, 1, "", "no SignerPolicy found")]
    return result.policy_set, result.errors
