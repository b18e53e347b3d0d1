"""docs/policy-reference.md against the code: the matching table row by row, the violation code
catalogue in both directions, the cookbook policies and their test suites (docs/examples/) and
every metric name.

The doc marks what is checked: `<!-- matching-table signer=... -->` … `<!-- /matching-table -->`,
`<!-- codes -->` … `<!-- /codes -->`, and `<!-- policy: docs/examples/x.yaml -->` (or a bare
`<!-- policy -->`) right before a policy's YAML block, `<!-- suite: docs/examples/x.test.yaml -->`
right before a suite's.
"""

from __future__ import annotations

import ast
import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from jsonschema import Draft202012Validator

from tests.builders import build_csr
from webhook.admission import parse_csr_object
from webhook.authoring.policytest import run_tests
from webhook.authoring.schema_cli import build_schema
from webhook.authoring.suite import Case, load_suites
from webhook.engine import EngineOptions, evaluate_create
from webhook.errors import PatternError
from webhook.matching.patterns import PatternKind, compile_pattern, matches
from webhook.matching.variables import TEMPLATE_VARIABLES, Requester, template_variables
from webhook.pod_context import pod_variables
from webhook.policy.loader import is_policy_file, load_policies
from webhook.resource import PCRObject

ROOT = Path(__file__).parent.parent
DOC_PATH = ROOT / "docs" / "policy-reference.md"
DOC = DOC_PATH.read_text(encoding="utf-8")
EXAMPLES = ROOT / "docs" / "examples"
PACKAGE = ROOT / "webhook"

# The policy field a pattern appears in -> the matcher that field uses.
KINDS = {
    "dnsNames": PatternKind.DNS,
    "ipAddresses": PatternKind.IP,
    "uris": PatternKind.URI,
    "emailAddresses": PatternKind.EMAIL,
    "subject": PatternKind.GLOB,
    "users": PatternKind.GLOB,
    "groups": PatternKind.GLOB,
    "serviceAccounts": PatternKind.SERVICE_ACCOUNT,
    "signerNames": PatternKind.SIGNER,
}

FAMILIES = (
    "csr|subject|dns|ip|uri|email|usages|extensions|key|signature|lifetime|ca|requester|deny|"
    "signer|transition|approval|issuance|node|pod"
)
CODE = re.compile(rf"(?:{FAMILIES})\.[a-z_]+")
# String literals in webhook/ that look like codes but are not.
# webhook/serving/devcert.py: a file name; the pod template variables (webhook/matching/variables.py).
NOT_CODES = frozenset({"key.pem", "pod.namespace", "pod.name", "pod.uid"})
# f-string codes (`code=f"..."`), by their template, with the values the placeholder takes.
SAN_FAMILIES = ("dns", "ip", "uri", "email")
FSTRING_CODES = {
    "{family}.not_allowed": SAN_FAMILIES,
    "{family}.required": SAN_FAMILIES,
    "{family}.too_many": SAN_FAMILIES,
    "deny.{family}": SAN_FAMILIES,
}


def _section(start: str, end: str) -> str:
    begin = DOC.index(start)
    return DOC[begin : DOC.index(end, begin)]


def _cell_code(cell: str) -> str:
    found = re.fullmatch(r"`([^`]*)`", cell.strip())
    assert found, f"expected one `code` span, got {cell!r}"
    return found.group(1)


# ---- the matching table -------------------------------------------------------------------


_PCR_CELL = re.compile(
    r"PCR `(?P<namespace>[^`/]+)/(?P<name>[^`]+)`(?: uid `(?P<uid>[^`]+)`)?"
    r"(?: sa `(?P<sa>[^`]+)`)?(?: node `(?P<node>[^`]+)`)?"
)


def _pod_variables(cell: str, signer: str) -> dict[str, str]:
    """The pod variables the engine defines (webhook.pod_context.pod_variables) for the PCR a
    row describes (docs §3.10.1): namespace/name, uid, service account and, only for node
    requesters, node."""
    found = _PCR_CELL.fullmatch(cell)
    assert found, f"a PCR cell reads 'PCR `ns/pod` uid `u` sa `s` node `n`', got {cell!r}"
    pcr = PCRObject(
        api_version="v1",
        namespace=found.group("namespace"),
        name="row",
        signer_name=signer,
        pod_name=found.group("name"),
        pod_uid=found.group("uid") or "",
        service_account_name=found.group("sa") or "",
        service_account_uid="sa-uid",
        node_name=found.group("node") or "",
        node_uid="node-uid",
        max_expiration_seconds=86400,
        stub_request=b"",
    )
    return pod_variables(pcr, nodes_only=bool(found.group("node")))


def _matching_rows() -> tuple[str, list[dict[str, Any]]]:
    header = re.search(r"<!-- matching-table signer=(\S+) -->", DOC)
    assert header, "matching table marker missing"
    body = _section(header.group(0), "<!-- /matching-table -->")
    rows = []
    lines = [line for line in body.splitlines() if line.startswith("|")]
    assert lines[0].split("|")[1:-1] == [
        " kind ",
        " pattern ",
        " value ",
        " requester ",
        " matches ",
        " why ",
    ]
    for line in lines[2:]:
        kind, pattern, value, requester, result, why = (c.strip() for c in line.split("|")[1:-1])
        names = re.findall(r"`([^`]*)`", requester)
        pod = _pod_variables(requester, header.group(1)) if requester.startswith("PCR") else None
        rows.append(
            {
                "kind": _cell_code(kind),
                "pattern": _cell_code(pattern),
                "value": _cell_code(value),
                "requester": Requester(names[0], tuple(names[1:])) if names and not pod else None,
                "pod": pod,
                "result": result,
                "why": why,
            }
        )
    return header.group(1), rows


SIGNER, MATCHING_ROWS = _matching_rows()


@pytest.mark.parametrize(
    "row", MATCHING_ROWS, ids=[f"{r['kind']} {r['pattern']} {r['value']}" for r in MATCHING_ROWS]
)
def test_matching_table_row_is_what_the_matcher_does(row: dict[str, Any]) -> None:
    kind = KINDS[row["kind"]]
    if row["result"] == "invalid":
        with pytest.raises(PatternError):
            compile_pattern(kind, row["pattern"])
        return
    assert row["result"] in {"yes", "no"}, row
    assert row["why"], "every row says why"
    variables = row["pod"]
    if row["requester"] is not None:
        variables = template_variables(row["requester"], SIGNER)
    assert matches(kind, row["pattern"], row["value"], variables) is (row["result"] == "yes")


def test_matching_table_covers_every_kind_variable_and_outcome() -> None:
    assert {r["kind"] for r in MATCHING_ROWS} == set(KINDS)
    used = {v for r in MATCHING_ROWS for v in re.findall(r"\$\{([^}]*)\}", r["pattern"])}
    assert set(TEMPLATE_VARIABLES) <= used
    assert {r["result"] for r in MATCHING_ROWS} == {"yes", "no", "invalid"}
    for row in MATCHING_ROWS:
        if "${" in row["pattern"] and row["result"] != "invalid":
            assert row["requester"] or row["pod"], f"template row without a requester: {row}"


# ---- the violation code catalogue ---------------------------------------------------------


def _fstring_template(node: ast.JoinedStr) -> str:
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue):
            parts.append("{" + ast.unparse(value.value) + "}")
    return "".join(parts)


def _source_codes() -> tuple[set[str], set[str]]:
    """(plain string literals that are codes, templates of f-string codes) in webhook/."""
    literals: set[str] = set()
    templates: set[str] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if CODE.fullmatch(node.value) and node.value not in NOT_CODES:
                    literals.add(node.value)
            elif (
                isinstance(node, ast.keyword)
                and node.arg == "code"
                and isinstance(node.value, ast.JoinedStr)
            ):
                templates.add(_fstring_template(node.value))
    return literals, templates


def _documented_codes() -> list[str]:
    body = _section("<!-- codes -->", "<!-- /codes -->")
    return re.findall(r"^- `([^`]+)`", body, flags=re.MULTILINE)


def test_every_fstring_code_has_its_expansions_listed_here() -> None:
    _, templates = _source_codes()
    assert templates == set(FSTRING_CODES), (
        "a code built with an f-string changed; list its expansions in FSTRING_CODES"
    )


def test_code_catalogue_lists_exactly_the_codes_in_the_source() -> None:
    literals, _ = _source_codes()
    expanded = {
        template.replace("{family}", family)
        for template, families in FSTRING_CODES.items()
        for family in families
    }
    in_source = literals | expanded
    documented = _documented_codes()
    assert len(documented) == len(set(documented)), "a code is listed twice"
    assert all(CODE.fullmatch(c) for c in documented), "a listed code has no known family"
    assert sorted(in_source - set(documented)) == [], "emitted but not documented"
    assert sorted(set(documented) - in_source) == [], "documented but never emitted"


def test_not_codes_still_exist() -> None:
    """Keep NOT_CODES honest: each exclusion must still be a string literal somewhere."""
    source = "".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    for text in NOT_CODES:
        assert f'"{text}"' in source


# ---- metrics ------------------------------------------------------------------------------

_EXPOSITION_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def test_every_metric_named_in_the_doc_exists() -> None:
    source = (PACKAGE / "serving" / "metrics.py").read_text(encoding="utf-8")
    names = set(re.findall(r"\bcsr_webhook_[a-z0-9_]*[a-z0-9]", DOC))
    assert names, "the doc names no metric?"
    missing = []
    for name in sorted(names):
        base = name
        for suffix in _EXPOSITION_SUFFIXES:
            if name.endswith(suffix) and f'"{name.removesuffix(suffix)}"' in source:
                base = name.removesuffix(suffix)
                break
        if f'"{base}"' not in source:
            missing.append(name)
    assert missing == []


# ---- cookbook policies --------------------------------------------------------------------

POLICY_BLOCK = re.compile(
    r"<!-- policy(?:: (?P<path>\S+))? -->\n```yaml\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL
)
POLICY_BLOCKS = [(m.group("path"), m.group("body")) for m in POLICY_BLOCK.finditer(DOC)]
EXAMPLE_FILES = sorted(p for p in EXAMPLES.iterdir() if is_policy_file(p))


def test_every_policy_marker_precedes_a_yaml_block() -> None:
    assert DOC.count("<!-- policy") == len(POLICY_BLOCKS)
    assert POLICY_BLOCKS


@pytest.mark.parametrize(
    ("path", "body"), POLICY_BLOCKS, ids=[p or "inline" for p, _ in POLICY_BLOCKS]
)
def test_policy_block_is_the_example_file_or_loads_itself(
    path: str | None, body: str, tmp_path: Path
) -> None:
    if path is not None:
        assert (ROOT / path).read_text(encoding="utf-8") == body, f"{path} and the doc differ"
        return
    file = tmp_path / "policy.yaml"
    file.write_text(body, encoding="utf-8")
    result = load_policies([file], lint=True)
    assert [str(p) for p in result.problems] == []


def test_every_example_file_is_shown_in_the_doc() -> None:
    shown = {path for path, _ in POLICY_BLOCKS if path}
    assert {str(p.relative_to(ROOT)) for p in EXAMPLE_FILES} == shown


@pytest.mark.parametrize("file", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_policy_loads_cleanly_on_its_own(file: Path) -> None:
    result = load_policies([file], lint=True)
    assert [str(p) for p in result.problems] == []
    assert result.policy_set is not None


def test_example_directory_loads_cleanly_as_one_set() -> None:
    """What `csr-webhook check --strict docs/examples` does: no ties, no duplicate names, and
    no lint warning either."""
    result = load_policies([EXAMPLES], lint=True)
    assert [str(p) for p in result.problems] == []
    assert result.policy_set is not None
    assert len(result.policy_set.policies) == len(EXAMPLE_FILES)


@pytest.mark.parametrize("file", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_policy_passes_the_editor_schema(file: Path) -> None:
    """Editor wiring (doc §2): the schema an editor gets from `csr-webhook schema` accepts it."""
    validator = Draft202012Validator(build_schema())
    for document in yaml.safe_load_all(file.read_text(encoding="utf-8")):
        assert [e.message for e in validator.iter_errors(document)] == []


def test_doc_shows_the_modeline_and_the_schema_command() -> None:
    assert "csr-webhook schema > csr-webhook.schema.json" in DOC
    assert "# yaml-language-server: $schema=./csr-webhook.schema.json" in DOC


# ---- what the cookbook says the examples do -----------------------------------------------

NODE = ("system:node:worker-1", ("system:nodes", "system:authenticated"))
SHOP_WEB = ("system:serviceaccount:shop:web", ("system:serviceaccounts",))
TEAM_A_API = (
    "system:serviceaccount:team-a:api",
    ("system:serviceaccounts", "system:serviceaccounts:team-a"),
)
SERVE = ["digital signature", "server auth"]
CLIENT = ["digital signature", "client auth"]

COOKBOOK_CASES = [
    # (name, signer, requester, usages, csr, expected verdict, policy, codes)
    (
        "node serving for its own name",
        "kubernetes.io/kubelet-serving",
        NODE,
        SERVE,
        {
            "common_name": "system:node:worker-1",
            "organization": ["system:nodes"],
            "dns_names": ["worker-1"],
            "ip_addresses": ["10.20.1.5"],
        },
        "allowed",
        "kubelet-serving",
        [],
    ),
    (
        "node serving for another node",
        "kubernetes.io/kubelet-serving",
        NODE,
        SERVE,
        {
            "common_name": "system:node:worker-2",
            "organization": ["system:nodes"],
            "dns_names": ["worker-2"],
        },
        "denied",
        "kubelet-serving",
        ["subject.not_allowed", "dns.not_allowed"],
    ),
    (
        "node user without the nodes group",
        "kubernetes.io/kubelet-serving",
        ("system:node:worker-1", ("system:authenticated",)),
        SERVE,
        {
            "common_name": "system:node:worker-1",
            "organization": ["system:nodes"],
            "dns_names": ["worker-1"],
        },
        "denied",
        "kubelet-serving",
        ["requester.not_permitted"],
    ),
    (
        "SVID for the workload's own identity",
        "spiffe.example.com/workload",
        SHOP_WEB,
        CLIENT,
        {"uris": ["spiffe://cluster.local/ns/shop/sa/web"]},
        "allowed",
        "spiffe-workloads",
        [],
    ),
    (
        "SVID for another identity",
        "spiffe.example.com/workload",
        SHOP_WEB,
        CLIENT,
        {"uris": ["spiffe://cluster.local/ns/shop/sa/admin"]},
        "denied",
        "spiffe-workloads",
        ["uri.not_allowed"],
    ),
    (
        "SVID for a kube-system identity hits the guardrail",
        "spiffe.example.com/workload",
        ("system:serviceaccount:kube-system:web", ("system:serviceaccounts",)),
        CLIENT,
        {"uris": ["spiffe://cluster.local/ns/kube-system/sa/web"]},
        "denied",
        "spiffe-workloads",
        ["deny.uri"],
    ),
    (
        "SVID with a subject",
        "spiffe.example.com/workload",
        SHOP_WEB,
        CLIENT,
        {"common_name": "web", "uris": ["spiffe://cluster.local/ns/shop/sa/web"]},
        "denied",
        "spiffe-workloads",
        ["subject.not_allowed"],
    ),
    (
        "team A service name",
        "internal.example.com/team-a",
        TEAM_A_API,
        SERVE,
        {
            "common_name": "api.team-a.svc.example.internal",
            "dns_names": ["api.team-a.svc.example.internal"],
        },
        "allowed",
        "team-a-mtls",
        [],
    ),
    (
        "team A: DNS * is one label, the CN glob crosses dots",
        "internal.example.com/team-a",
        TEAM_A_API,
        SERVE,
        {
            "common_name": "x.api.team-a.svc.example.internal",
            "dns_names": ["x.api.team-a.svc.example.internal"],
        },
        "denied",
        "team-a-mtls",
        ["dns.not_allowed"],
    ),
    (
        "team B's service account on team A's signer",
        "internal.example.com/team-a",
        ("system:serviceaccount:team-b:api", ("system:serviceaccounts:team-b",)),
        SERVE,
        {
            "common_name": "api.team-a.svc.example.internal",
            "dns_names": ["api.team-a.svc.example.internal"],
        },
        "denied",
        "team-a-mtls",
        ["requester.not_permitted"],
    ),
    (
        "another team's signer falls to the baseline pattern",
        "internal.example.com/team-b",
        ("alice", ("engineering",)),
        CLIENT,
        {"common_name": "alice"},
        "allowed",
        "internal-baseline",
        [],
    ),
    (
        "the exact team A policy beats the baseline",
        "internal.example.com/team-a",
        ("alice", ("engineering",)),
        CLIENT,
        {"common_name": "alice"},
        "denied",
        "team-a-mtls",
        ["requester.not_permitted"],
    ),
    (
        "engineer client certificate for their own name",
        "kubernetes.io/kube-apiserver-client",
        ("oidc:alice", ("oidc:engineering",)),
        CLIENT,
        {"common_name": "oidc:alice", "organization": ["sre"]},
        "allowed",
        "kube-apiserver-client",
        [],
    ),
    (
        "system: identities are never minted",
        "kubernetes.io/kube-apiserver-client",
        ("oidc:alice", ("oidc:engineering",)),
        CLIENT,
        {"common_name": "oidc:alice", "organization": ["system:masters"]},
        "denied",
        "kube-apiserver-client",
        ["deny.subject", "subject.not_allowed"],
    ),
    (
        "audit mode records instead of denying",
        "payments.example.com/mtls",
        ("system:serviceaccount:payments:api", ()),
        SERVE,
        {"common_name": "api.payments.svc", "dns_names": ["db.payments.svc"]},
        "audited",
        "payments-mtls",
        ["dns.not_allowed"],
    ),
]


@pytest.mark.parametrize(
    ("name", "signer", "requester", "usages", "csr", "verdict", "policy", "codes"),
    COOKBOOK_CASES,
    ids=[case[0] for case in COOKBOOK_CASES],
)
def test_cookbook_policy_behaves_as_described(  # noqa: PLR0917 - one parametrized case
    name: str,
    signer: str,
    requester: tuple[str, tuple[str, ...]],
    usages: list[str],
    csr: dict[str, Any],
    verdict: str,
    policy: str,
    codes: list[str],
) -> None:
    policies = load_policies([EXAMPLES]).policy_set
    assert policies is not None
    username, groups = requester
    obj = parse_csr_object(
        {
            "metadata": {"name": name},
            "spec": {
                "signerName": signer,
                "request": base64.b64encode(build_csr(**csr)).decode(),
                "usages": usages,
                "expirationSeconds": 3600,
                "username": username,
                "groups": list(groups),
            },
            "status": {},
        }
    )
    decision = evaluate_create(obj, Requester(username, groups), policies, EngineOptions())
    assert (decision.verdict.value, decision.policy) == (verdict, policy)
    assert sorted(v.code for v in decision.violations) == sorted(codes)


def _github_anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_every_internal_link_has_a_heading() -> None:
    headings = re.findall(r"^#{1,6} (.+)$", DOC, flags=re.MULTILINE)
    anchors = {_github_anchor(h) for h in headings}
    links = set(re.findall(r"\]\(#([^)]+)\)", DOC))
    assert sorted(links - anchors) == []


# ---- cookbook test suites -----------------------------------------------------------------

SUITE_BLOCK = re.compile(
    r"<!-- suite: (?P<path>\S+) -->\n```yaml\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL
)
SUITE_BLOCKS = [(m.group("path"), m.group("body")) for m in SUITE_BLOCK.finditer(DOC)]
EXAMPLE_SUITES = sorted(EXAMPLES.glob("*.test.yaml"))


def test_every_example_suite_is_shown_in_the_doc_byte_for_byte() -> None:
    assert DOC.count("<!-- suite:") == len(SUITE_BLOCKS)
    assert {path for path, _ in SUITE_BLOCKS} == {str(p.relative_to(ROOT)) for p in EXAMPLE_SUITES}
    for path, body in SUITE_BLOCKS:
        assert (ROOT / path).read_text(encoding="utf-8") == body, f"{path} and the doc differ"


@pytest.mark.parametrize("suite", EXAMPLE_SUITES, ids=lambda p: p.name)
def test_example_suite_passes_against_its_recipe(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_tests([str(suite)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, "\n".join(lines)
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"
    assert len(lines) > 10


def test_spiffe_suite_covers_the_recipes_promises() -> None:
    [suite], problems = load_suites(EXAMPLES / "spiffe-workloads.test.yaml")
    assert problems == []
    seen = {(c.operation, c.expect, c.violations) for c in suite.cases}
    uris = {
        u.value
        for c in suite.cases
        if isinstance(c, Case) and not isinstance(c.request, bytes)
        for u in c.request.sans
        if isinstance(u, x509.UniformResourceIdentifier)
    }
    assert ("create", "allowed", ()) in seen
    assert ("create", "denied", ("uri.not_allowed",)) in seen
    assert "spiffe://cluster.local/ns/payments/sa/web" in uris  # another namespace's identity
    assert "spiffe://cluster.local/ns/**/sa/web" in uris  # a ** path
    assert {c.operation for c in suite.cases} == {"create", "mutate", "approve", "issue"}
    assert {(c.operation, c.expect) for c in suite.cases} >= {
        ("approve", "allowed"),
        ("approve", "denied"),
        ("issue", "allowed"),
        ("issue", "denied"),
    }
