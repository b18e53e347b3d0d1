"""`csr-webhook test`: run PolicyTest suites (`*.test.yaml`, SPEC §7) through the server's engine.

Each case becomes the AdmissionReview kube-apiserver would send to /validate, goes through
parse_review -> engine.evaluate -> build_response, and its verdict is read from the response.
Exit 0: every case passed; 1: a case failed or a suite's policies did not load; 2: a test file
is broken or missing (each problem printed as `file:line: path: message`). 2 wins over 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook.admission import AdmissionReviewResponse, build_response, parse_review
from webhook.authoring import generate
from webhook.authoring.generate import KeyCache, RequestSpec, SpecError
from webhook.engine import EngineOptions, evaluate
from webhook.policy import schema
from webhook.policy.loader import load_policies
from webhook.policy.model import PolicySet
from webhook.policy.source import Document, PathKey, Problem, format_path, read_documents

TEST_SUFFIXES = (".test.yaml", ".test.yml")
_CODE = re.compile(r"[a-z0-9_]+\.(?:[a-z0-9_]+\.)*(?:[a-z0-9_]+)?")
_CONDITION = {"approve": "Approved", "deny": "Denied"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    name: str
    where: str  # file:line of the case, for the PASS/FAIL line
    index: int
    operation: str  # create | approve | deny
    requester: dict[str, Any]  # userInfo of the CSR's creator
    actor: dict[str, Any] | None  # userInfo of the approver/denier
    signer_name: str
    usages: tuple[str, ...]
    expiration_seconds: int | None
    request: RequestSpec | bytes  # a description to sign now, or the bytes of a PEM file
    expect: str
    violations: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    file: str
    name: str
    policies: tuple[Path, ...]
    cases: tuple[Case, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the webhook answered: verdict (allowed|denied|warned|audited) and violation codes."""

    verdict: str
    codes: tuple[str, ...] = ()


def find_test_files(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    """Directories expand (not recursively, sorted) to their test files; files are taken as is."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.name.endswith(TEST_SUFFIXES) and not p.name.startswith(".") and p.is_file()
            )
            if not found:
                problems.append(Problem(str(path), 1, "", "no *.test.yaml or *.test.yml files"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), 1, "", "no such file or directory"))
    return files, problems


def load_suites(path: Path) -> tuple[list[Suite], list[Problem]]:
    """Every PolicyTest document of one file; a document with any problem yields no suite."""
    documents, problems = read_documents(path)
    if not documents and not problems:
        problems.append(Problem(str(path), 1, "", "no PolicyTest document"))
    suites = []
    for document in documents:
        suite = _SuiteBuilder(path, document, problems).build()
        if suite is not None:
            suites.append(suite)
    return suites, problems


class _SuiteBuilder:
    def __init__(self, path: Path, document: Document, problems: list[Problem]) -> None:
        self.path = path
        self.document = document
        self.problems = problems

    def problem(self, path: PathKey, message: str) -> None:
        line = self.document.line_of(path)
        self.problems.append(Problem(self.document.file, line, format_path(path), message))

    def build(self) -> Suite | None:
        value = self.document.value
        if not isinstance(value, dict):
            self.problem((), "a PolicyTest document must be a mapping")
            return None
        generate.listify_subjects(value)
        before = len(self.problems)
        shape = list(schema.validate_shape(schema.POLICY_TEST, value))
        for path, message in shape:
            self.problem(path, message)
        # Cases whose shape is right get the semantic checks too: every problem at once.
        misshapen = {p[2] for p, _ in shape if len(p) > 2 and p[:2] == ("spec", "cases")}
        spec = value.get("spec")
        raw_cases = spec.get("cases") if isinstance(spec, dict) else None
        if not isinstance(spec, dict) or not isinstance(raw_cases, list):
            return None
        cases = [self.case(raw, i) for i, raw in enumerate(raw_cases) if i not in misshapen]
        names = [raw.get("name") if isinstance(raw, dict) else None for raw in raw_cases]
        for index, name in enumerate(names):
            if name is not None and name in names[:index]:
                self.problem(("spec", "cases", index, "name"), f"duplicate case name {name!r}")
        if len(self.problems) > before:
            self.problems[before:] = sorted(self.problems[before:], key=lambda p: p.line)
            return None
        base = self.path.parent
        policies = tuple(base / p for p in spec.get("policies", [])) or (base,)
        return Suite(
            file=self.document.file,
            name=value["metadata"]["name"],
            policies=policies,
            cases=tuple(c for c in cases if c is not None),
        )

    def case(self, raw: dict[str, Any], index: int) -> Case | None:
        path: PathKey = ("spec", "cases", index)
        before = len(self.problems)
        operation = raw.get("operation", "create")
        if operation == "create" and "actor" in raw:
            self.problem((*path, "actor"), "actor is only for operation approve or deny")
        if operation != "create" and "actor" not in raw:
            self.problem(path, f"missing required field 'actor' (the caller who may {operation})")
        violations = raw.get("violations", [])
        for number, code in enumerate(violations):
            if not _CODE.fullmatch(code):
                self.problem(
                    (*path, "violations", number),
                    f"{code!r} is neither a code like 'dns.not_allowed' nor a family like 'dns.'",
                )
        if raw["expect"] == "allowed" and violations:
            self.problem((*path, "violations"), "an allowed request carries no violations")
        request = self.request(raw["csr"], (*path, "csr"))
        if request is None or len(self.problems) > before:
            return None
        csr = raw["csr"]
        actor = raw.get("actor")
        return Case(
            name=raw["name"],
            where=f"{self.document.file}:{self.document.line_of(path)}",
            index=index,
            operation=operation,
            requester=_user(raw["requester"]),
            actor=_user(actor) if actor is not None else None,
            signer_name=csr["signerName"],
            usages=tuple(csr["usages"]),
            expiration_seconds=csr.get("expirationSeconds"),
            request=request,
            expect=raw["expect"],
            violations=tuple(violations),
        )

    def request(self, csr: dict[str, Any], path: PathKey) -> RequestSpec | bytes | None:
        if ("request" in csr) == ("requestFile" in csr):
            self.problem(path, "give exactly one of 'request' (generated) and 'requestFile'")
            return None
        if "request" in csr:
            try:
                return generate.parse_request_spec(csr["request"], (*path, "request"))
            except SpecError as exc:
                self.problem(exc.path, exc.message)
                return None
        try:
            return generate.read_request_file(self.path.parent / str(csr["requestFile"]))
        except SpecError as exc:
            self.problem((*path, "requestFile"), exc.message)
            return None


def _user(raw: Mapping[str, Any]) -> dict[str, Any]:
    return generate.user_info(raw["username"], raw.get("groups", []))


def build_case_review(case: Case, keys: KeyCache) -> dict[str, Any]:
    """The AdmissionReview kube-apiserver sends the validating webhook for this case."""
    if isinstance(case.request, RequestSpec):
        pem = generate.build_request_pem(case.request, keys)
    else:
        pem = case.request
    csr = generate.stored_csr(
        f"policytest-{case.index + 1}",
        pem,
        case.signer_name,
        case.usages,
        case.expiration_seconds,
        case.requester,
    )
    if case.operation == "create":
        return generate.create_review(csr, case.requester)
    assert case.actor is not None
    return generate.approval_review(csr, _CONDITION[case.operation], case.actor)


def review_response(
    review: Mapping[str, Any], policies: PolicySet, options: EngineOptions | None = None
) -> AdmissionReviewResponse:
    """Exactly the /validate path of the server, minus HTTP: parse, evaluate, build."""
    admission = parse_review(json.dumps(review).encode())
    decision = evaluate(admission, policies, options or EngineOptions())
    return build_response(admission.uid, decision)


def read_outcome(response: Mapping[str, Any]) -> Outcome:
    """`allowed: false` is denied with the codes of status.details.causes; otherwise the
    verdict is auditAnnotations.decision (allowed when absent), codes its `violations`."""
    if not response.get("allowed"):
        causes = response.get("status", {}).get("details", {}).get("causes", [])
        return Outcome("denied", tuple(dict.fromkeys(c["reason"] for c in causes)))
    annotations = response.get("auditAnnotations", {})
    codes = [c for c in annotations.get("violations", "").split(",") if c]
    return Outcome(annotations.get("decision", "allowed"), tuple(dict.fromkeys(codes)))


def judge(case: Case, outcome: Outcome) -> str | None:
    """None when the outcome meets the expectation, else what came out instead."""
    missing = [v for v in case.violations if not _seen(v, outcome.codes)]
    if outcome.verdict == case.expect and not missing:
        return None
    expected = case.expect + (f" [{', '.join(case.violations)}]" if case.violations else "")
    got = outcome.verdict + (f" [{', '.join(outcome.codes)}]" if outcome.codes else "")
    text = f"expected {expected}, got {got}"
    return text + (f" (missing {', '.join(missing)})" if missing else "")


def _seen(wanted: str, codes: Sequence[str]) -> bool:
    if wanted.endswith("."):
        return any(code.startswith(wanted) for code in codes)
    return wanted in codes


def run_tests(paths: Sequence[str], out: Callable[[str], None] = print) -> int:
    """Run every suite under `paths`; print PASS/FAIL per case and `N passed, M failed`."""
    files, broken = find_test_files([Path(p) for p in paths])
    for problem in broken:
        out(str(problem))
    keys = KeyCache()
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
            for case in suite.cases:
                if policies is None:
                    failure: str | None = (
                        f"not run: the policies did not load ({len(load_problems)} problem(s))"
                    )
                else:
                    response = review_response(build_case_review(case, keys), policies)
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
