"""Load PolicyTest suites (`*.test.yaml`): shape, then what each operation needs, every problem.

A document with any problem yields no suite; problems are `file:line: path: message`. Files a
suite names (policies, requestFile, the CA) are resolved against the test file's directory;
CSR keys are generated later, at run time, and never come from here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from webhook import codes
from webhook.authoring import generate, reviews
from webhook.authoring.generate import RequestSpec
from webhook.authoring.issue import CertificateSpec, SigningCA, load_ca, parse_certificate_spec
from webhook.authoring.pod_suite import (
    POD_KIND,
    PodCase,
    csr_only_problems,
    field_problems,
    parse_issue,
    parse_pod_spec,
)
from webhook.authoring.suite_schema import POLICY_TEST
from webhook.errors import SpecError
from webhook.facts import NodeAddress, StaticFacts
from webhook.policy.source import Document, PathKey, Problem, format_path, read_documents
from webhook.policy.validation import validate_shape

TEST_SUFFIXES = (".test.yaml", ".test.yml")
_CODE = re.compile(r"[a-z0-9_]+\.(?:[a-z0-9_]+\.)*(?:[a-z0-9_]+)?")
_WITH_ACTOR = ("approve", "deny", "issue")
# A case without cluster facts (no `cluster` in it or its suite) sees none, as a webhook
# without a cluster connection does.
UNKNOWN_CLUSTER = StaticFacts(reason="the policy test gives no cluster facts (cluster: ...)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    name: str
    where: str  # file:line of the case, for the PASS/FAIL line
    index: int
    operation: str  # create | mutate | approve | deny | issue
    requester: dict[str, Any]  # userInfo of the CSR's creator
    actor: dict[str, Any] | None  # userInfo of the approver, denier or signer
    signer_name: str
    usages: tuple[str, ...]
    expiration_seconds: int | None
    request: RequestSpec | bytes  # a description to sign now, or the bytes of a PEM file
    expect: str  # mutate: always "allowed" (/mutate never denies)
    violations: tuple[str, ...]
    patch: int | None = None  # mutate: the expirationSeconds the patch sets, None for no patch
    certificate: CertificateSpec | None = None  # issue: what the signer writes
    facts: StaticFacts = UNKNOWN_CLUSTER  # the case's `cluster`, else its suite's


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    file: str
    name: str
    policies: tuple[Path, ...]
    cases: tuple[Case | PodCase, ...]
    ca: SigningCA | None = None  # spec.ca; None: a CA generated for the run


def cluster_facts(raw: Mapping[str, Any]) -> StaticFacts:
    """A `cluster:` mapping of the PolicyTest shape as facts: exactly the Nodes listed, and the
    pending CSR counts given (0 for any other signer and requester)."""
    nodes = {
        node["name"]: tuple(NodeAddress(a["type"], a["address"]) for a in node.get("addresses", []))
        for node in raw.get("nodes", [])
    }
    pending = {
        (entry["signerName"], entry["username"]): tuple(
            f"pending-{number + 1}" for number in range(entry["count"])
        )
        for entry in raw.get("pendingCSRs", [])
    }
    return StaticFacts(nodes=nodes, pending=pending)


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
        self.misshapen_paths: set[PathKey] = set()

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
        shape = list(validate_shape(POLICY_TEST, value))
        for path, message in shape:
            self.problem(path, message)
        self.misshapen_paths = {path for path, _ in shape}
        # Cases whose shape is right get the semantic checks too: every problem at once.
        misshapen = {p[2] for p, _ in shape if len(p) > 2 and p[:2] == ("spec", "cases")}
        spec = value.get("spec")
        raw_cases = spec.get("cases") if isinstance(spec, dict) else None
        if not isinstance(spec, dict) or not isinstance(raw_cases, list):
            return None
        facts = self.cluster(spec.get("cluster"), ("spec", "cluster"), UNKNOWN_CLUSTER)
        cases = [self.case(raw, i, facts) for i, raw in enumerate(raw_cases) if i not in misshapen]
        names = [raw.get("name") if isinstance(raw, dict) else None for raw in raw_cases]
        for index, name in enumerate(names):
            if name is not None and name in names[:index]:
                self.problem(("spec", "cases", index, "name"), f"duplicate case name {name!r}")
        suite_name = str(_mapping(value.get("metadata")).get("name", "?"))
        policies = self.policies(spec.get("policies"), suite_name)
        ca = self.ca(spec["ca"]) if "ca" in spec and not shape else None
        if len(self.problems) > before:
            self.problems[before:] = sorted(self.problems[before:], key=lambda p: p.line)
            return None
        return Suite(
            file=self.document.file,
            name=suite_name,
            policies=policies,
            cases=tuple(c for c in cases if c is not None),
            ca=ca,
        )

    def policies(self, raw: object, suite_name: str) -> tuple[Path, ...]:
        base = self.path.parent
        entries = [e for e in raw if isinstance(e, str)] if isinstance(raw, list) else []
        for index, entry in enumerate(entries):
            resolved = base / entry
            if not resolved.exists():
                self.problem(
                    ("spec", "policies", index),
                    f"suite {suite_name!r} lists policy file {entry!r}, but {str(resolved)!r} "
                    "does not exist (entries are relative to the test file)",
                )
        return tuple(base / e for e in entries) or (base,)

    def ca(self, raw: Mapping[str, Any]) -> SigningCA | None:
        base = self.path.parent
        try:
            return load_ca(base / raw["certificateFile"], base / raw["keyFile"])
        except SpecError as exc:
            self.problem(("spec", "ca", *exc.path), exc.message)
            return None

    def cluster(self, raw: object, path: PathKey, inherited: StaticFacts) -> StaticFacts:
        """`cluster:` as StaticFacts: `unknown`, or exactly the Nodes listed and the pending
        counts given (0 for any other signer and requester). Absent: `inherited`."""
        misshapen = any(p[: len(path)] == path for p in self.misshapen_paths)
        if raw is None or misshapen or (not isinstance(raw, dict) and raw != "unknown"):
            return inherited
        if not isinstance(raw, dict):
            return UNKNOWN_CLUSTER
        names = [node["name"] for node in raw.get("nodes", [])]
        for index, name in enumerate(names):
            if name in names[:index]:
                self.problem((*path, "nodes", index, "name"), f"duplicate Node {name!r}")
        counted = [(e["signerName"], e["username"]) for e in raw.get("pendingCSRs", [])]
        for index, (signer, username) in enumerate(counted):
            if (signer, username) in counted[:index]:
                self.problem(
                    (*path, "pendingCSRs", index),
                    f"signer {signer!r} and username {username!r} are counted twice",
                )
        return cluster_facts(raw)

    def expectation(self, raw: Mapping[str, Any], path: PathKey) -> tuple[str, ...]:
        violations = raw.get("violations", [])
        for number, code in enumerate(violations):
            self.code(code, (*path, "violations", number))
        if raw.get("expect") == "allowed" and violations:
            self.problem((*path, "violations"), "an allowed request carries no violations")
        return tuple(violations)

    def case(self, raw: dict[str, Any], index: int, facts: StaticFacts) -> Case | PodCase | None:
        path: PathKey = ("spec", "cases", index)
        if raw.get("kind") == POD_KIND:
            return self.pod_case(raw, path, index)
        before = len(self.problems)
        for where, message in csr_only_problems(raw):
            self.problem((*path, *where), message)
        if "csr" not in raw:
            return None
        facts = self.cluster(raw.get("cluster"), (*path, "cluster"), facts)
        operation = raw.get("operation", "create")
        self.operation_fields(raw, path, operation)
        violations = self.expectation(raw, path)
        request = self.request(raw["csr"], (*path, "csr"))
        certificate = None
        if operation == "issue":
            certificate = self.certificate(raw, request, path)
        if request is None or len(self.problems) > before:
            return None
        csr = raw["csr"]
        actor = raw.get("actor")
        patch = raw.get("patch")
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
            expect=raw.get("expect", "allowed"),
            violations=violations,
            patch=patch["expirationSeconds"] if isinstance(patch, dict) else None,
            certificate=certificate,
            facts=facts,
        )

    def pod_case(self, raw: dict[str, Any], path: PathKey, index: int) -> PodCase | None:
        before = len(self.problems)
        operation = raw.get("operation", "create")
        for where, message in field_problems(raw, operation):
            self.problem((*path, *where), message)
        violations = self.expectation(raw, path)
        issue = None
        if operation == "issue":
            try:
                issue = parse_issue(raw.get("issue"), (*path, "issue"))
            except SpecError as exc:
                self.problem(exc.path, exc.message)
        if len(self.problems) > before:
            return None
        actor = raw.get("actor")
        return PodCase(
            name=raw["name"],
            where=f"{self.document.file}:{self.document.line_of(path)}",
            index=index,
            operation=operation,
            requester=_user(raw["requester"]),
            actor=_user(actor) if actor is not None else None,
            pod=parse_pod_spec(raw["pod"]),
            expect=raw["expect"],
            violations=violations,
            issue=issue,
        )

    def operation_fields(self, raw: Mapping[str, Any], path: PathKey, operation: str) -> None:
        """Each operation's own fields: actor (approve, deny, issue), certificate (issue),
        patch instead of expect and violations (mutate)."""
        if operation not in _WITH_ACTOR and "actor" in raw:
            self.problem((*path, "actor"), "actor is only for operation approve, deny or issue")
        if operation in _WITH_ACTOR and "actor" not in raw:
            self.problem(path, f"missing required field 'actor' (the caller who may {operation})")
        if operation != "issue" and "certificate" in raw:
            self.problem((*path, "certificate"), "certificate is only for operation issue")
        if operation == "mutate":
            for name in ("expect", "violations"):
                if name in raw:
                    self.problem(
                        (*path, name),
                        f"a mutate case has no {name}: /mutate never denies; say what it "
                        "patches with `patch: {expirationSeconds: N}` or `patch: none`",
                    )
            if "patch" not in raw:
                self.problem(
                    path,
                    "missing required field 'patch' (the expirationSeconds /mutate sets, or none)",
                )
            return
        if "patch" in raw:
            self.problem((*path, "patch"), "patch is only for operation mutate")
        if "expect" not in raw:
            self.problem(path, "missing required field 'expect'")

    def code(self, code: str, path: PathKey) -> None:
        if not _CODE.fullmatch(code):
            self.problem(
                path, f"{code!r} is neither a code like 'dns.not_allowed' nor a family like 'dns.'"
            )
            return
        if codes.is_known(code):
            return
        what = "family" if code.endswith(".") else "violation code"
        suggestion = codes.nearest(code)
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        self.problem(path, f"the webhook never emits {what} {code!r}{hint}")

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

    def certificate(
        self, raw: Mapping[str, Any], request: RequestSpec | bytes | None, path: PathKey
    ) -> CertificateSpec | None:
        if isinstance(request, bytes):
            try:
                x509.load_pem_x509_csr(request).public_key()
            except (ValueError, UnsupportedAlgorithm) as exc:
                self.problem(
                    (*path, "csr", "requestFile"),
                    f"an issue case needs a CSR the signer can read: {exc}",
                )
                return None
        try:
            return parse_certificate_spec(raw.get("certificate") or {}, (*path, "certificate"))
        except SpecError as exc:
            self.problem(exc.path, exc.message)
            return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _user(raw: Mapping[str, Any]) -> dict[str, Any]:
    username = raw["username"]
    uid = str(uuid.uuid5(uuid.NAMESPACE_DNS, username))  # a stable uid, as an OIDC user has
    return reviews.user_info(username, raw.get("groups", []), uid=uid)
