"""constraints.node, constraints.maxPending and approval.auto: how they load (defaults, errors
with file and line) and how the engine judges real CSRs with them under fixed cluster facts."""

from __future__ import annotations

import base64
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.builders import build_csr
from webhook.admission import parse_csr_object
from webhook.decision import Decision, Verdict
from webhook.engine import EngineOptions, evaluate_create
from webhook.facts import (
    ClaimAnswer,
    ClusterFacts,
    NodeAddress,
    NodeAnswer,
    PendingAnswer,
    StaticFacts,
    Unknown,
)
from webhook.matching.variables import Requester
from webhook.policy import schema
from webhook.policy.loader import load_policies
from webhook.policy.model import AutoApproval, NodeBinding, PolicySet

SIGNER = "example.com/serving"
NODE = Requester("system:node:worker-1", ("system:nodes", "system:authenticated"))
WORKER_1 = (
    NodeAddress("InternalIP", "10.0.0.15"),
    NodeAddress("ExternalIP", "203.0.113.7"),
    NodeAddress("Hostname", "worker-1"),
    NodeAddress("InternalDNS", "ip-10-0-0-15.ec2.internal"),
    NodeAddress("ExternalDNS", "worker-1.example.com."),
)
FACTS = StaticFacts(nodes={"worker-1": WORKER_1}, pending={})


def policy_text(constraints: str, rules: str = "", approval: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(constraints), " " * 8)
    return (
        textwrap.dedent(f"""\
        apiVersion: policy.csr-webhook.io/v1alpha1
        kind: SignerPolicy
        metadata: {{name: serving}}
        spec:
          signerNames: [{SIGNER!r}]
          rules:
            - name: bound
              allowed:
                subject: {{commonName: {{values: ["system:node:*"]}}}}
                dnsNames: {{values: ["**"], maxItems: 10}}
                ipAddresses: {{values: ["0.0.0.0/0", "::/0"]}}
                usages: ["digital signature", "server auth"]
              constraints:
        """)
        + body
        + rules
        + approval
    )


def load(tmp_path: Path, text: str) -> tuple[PolicySet | None, list[str]]:
    (tmp_path / "p.yaml").write_text(text)
    result = load_policies([tmp_path])
    return result.policy_set, [str(p) for p in result.problems]


def loaded(tmp_path: Path, text: str) -> PolicySet:
    policies, problems = load(tmp_path, text)
    assert policies is not None and problems == [], problems
    return policies


def judge(
    policies: PolicySet,
    *,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    requester: Requester = NODE,
    facts: ClusterFacts = FACTS,
    admission: bool = True,
    name: str = "csr-1",
) -> Decision:
    pem = build_csr(common_name=requester.username, dns_names=dns, ip_addresses=ips)
    obj = parse_csr_object(
        {
            "metadata": {"name": name},
            "spec": {
                "signerName": SIGNER,
                "request": base64.b64encode(pem).decode(),
                "usages": ["digital signature", "server auth"],
                "username": requester.username,
                "groups": list(requester.groups),
            },
            "status": {},
        }
    )
    return evaluate_create(
        obj,
        requester,
        policies,
        EngineOptions(),
        facts=facts,
        admission=admission,
    )


def codes(decision: Decision) -> list[str]:
    return [v.code for v in decision.violations]


# ---- loading ------------------------------------------------------------------------------------


def test_empty_node_binding_means_the_node_must_exist_and_binds_no_san(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text("node: {}\n"))
    constraints = policies.policies[0].rules[0].constraints
    assert constraints.node == NodeBinding(
        must_exist=True, sans_from_addresses=frozenset(), allow_shared=False
    )
    assert constraints.max_pending is None
    assert policies.policies[0].approval.auto is None


def test_must_exist_default_is_the_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rule = schema.SIGNER_POLICY["properties"]["spec"]["properties"]["rules"]["items"]
    node = rule["properties"]["constraints"]["properties"]["node"]
    monkeypatch.setitem(node["properties"]["mustExist"], "default", False)
    policies, problems = load(tmp_path, policy_text("node: {sansFromAddresses: [Hostname]}\n"))
    assert problems == [] and policies is not None
    binding = policies.policies[0].rules[0].constraints.node
    assert binding == NodeBinding(must_exist=False, sans_from_addresses=frozenset({"Hostname"}))


def test_every_field_builds(tmp_path: Path) -> None:
    text = policy_text(
        """\
        node: {mustExist: false, sansFromAddresses: [InternalIP, ExternalDNS], sharedAddresses: Allow}
        maxPending: 3
        """,
        approval="  approval:\n    auto: {approve: true}\n",
    )
    policy = loaded(tmp_path, text).policies[0]
    constraints = policy.rules[0].constraints
    assert constraints.node == NodeBinding(
        must_exist=False,
        sans_from_addresses=frozenset({"InternalIP", "ExternalDNS"}),
        allow_shared=True,
    )
    assert constraints.max_pending == 3
    assert policy.approval.auto == AutoApproval(approve=True, deny=False)


def test_unknown_address_type_is_a_load_error_naming_file_line_field_and_value(
    tmp_path: Path,
) -> None:
    _, problems = load(tmp_path, policy_text("node: {sansFromAddresses: [InternalIP, PodIP]}\n"))
    assert len(problems) == 1
    assert problems[0] == (
        f"{tmp_path}/p.yaml:14: spec.rules[0].constraints.node.sansFromAddresses[1]: must be one of "
        "'InternalIP', 'ExternalIP', 'Hostname', 'InternalDNS', 'ExternalDNS', got 'PodIP'"
    )


@pytest.mark.parametrize("value", ["0", "101", '"3"', "true"])
def test_max_pending_out_of_range_or_type_is_a_load_error(tmp_path: Path, value: object) -> None:
    policies, problems = load(tmp_path, policy_text(f"maxPending: {value}\n"))
    assert policies is None
    assert [p.split(": ")[1] for p in problems] == ["spec.rules[0].constraints.maxPending"]


def test_binding_that_checks_nothing_is_a_warning(tmp_path: Path) -> None:
    policies, problems = load(tmp_path, policy_text("node: {mustExist: false}\n"))
    assert policies is not None
    assert problems == [
        f"{tmp_path}/p.yaml:14: spec.rules[0].constraints.node: warning: mustExist: false "
        "without sansFromAddresses checks nothing but that the requester is a node; drop "
        "constraints.node or list address types"
    ]


# ---- the node binding ---------------------------------------------------------------------------

ALL_TYPES = (
    "node: {sansFromAddresses: [InternalIP, ExternalIP, Hostname, InternalDNS, ExternalDNS]}\n"
)


def test_sans_that_are_the_nodes_addresses_are_allowed(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text(ALL_TYPES))
    decision = judge(
        policies,
        dns=("worker-1", "IP-10-0-0-15.ec2.INTERNAL", "worker-1.example.com"),
        ips=("10.0.0.15", "203.0.113.7", "::ffff:10.0.0.15"),
    )
    assert (decision.verdict, codes(decision)) == (Verdict.ALLOWED, [])


def test_each_san_outside_the_addresses_is_named_with_the_node_and_its_addresses(
    tmp_path: Path,
) -> None:
    policies = loaded(tmp_path, policy_text("node: {sansFromAddresses: [InternalIP, Hostname]}\n"))
    decision = judge(
        policies,
        dns=("worker-1", "ip-10-0-0-15.ec2.internal"),  # an InternalDNS: not a listed type
        ips=("10.0.0.16", "203.0.113.7"),
    )
    assert decision.verdict is Verdict.DENIED
    found = [(v.code, v.field) for v in decision.violations]
    assert found == [
        ("node.san_not_an_address", "spec.request.dnsNames[1]"),
        ("node.san_not_an_address", "spec.request.ipAddresses[0]"),
        ("node.san_not_an_address", "spec.request.ipAddresses[1]"),
    ]
    assert decision.violations[0].message == (
        "DNS name 'ip-10-0-0-15.ec2.internal' is not an address of Node 'worker-1' of type "
        "Hostname, InternalIP: it has ['10.0.0.15', 'worker-1']"
    )


def test_a_name_address_never_matches_an_ip_san_nor_an_ip_address_a_dns_san(
    tmp_path: Path,
) -> None:
    facts = StaticFacts(
        nodes={"worker-1": (NodeAddress("Hostname", "10.0.0.15"), NodeAddress("InternalIP", "a"))},
        pending={},
    )
    policies = loaded(tmp_path, policy_text(ALL_TYPES))
    assert codes(judge(policies, ips=("10.0.0.15",), facts=facts)) == []
    assert codes(judge(policies, dns=("a",), facts=facts)) == []
    # The DNS name "10.0.0.15" is no valid DNS SAN at all (csr.dns_ip_literal); a name never
    # reaches an IP SAN: IP SANs are addresses by construction.


def test_a_missing_node_is_not_found_and_its_sans_are_no_addresses(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text(ALL_TYPES))
    facts = StaticFacts(nodes={}, pending={})
    decision = judge(policies, dns=("worker-1",), facts=facts)
    assert codes(decision) == ["node.not_found", "node.san_not_an_address"]
    assert decision.violations[1].message.endswith(": the Node does not exist")


def test_must_exist_false_judges_only_the_sans(tmp_path: Path) -> None:
    text = policy_text("node: {mustExist: false, sansFromAddresses: [Hostname]}\n")
    policies = loaded(tmp_path, text)
    assert codes(judge(policies, dns=("worker-1",), facts=StaticFacts(nodes={}, pending={}))) == [
        "node.san_not_an_address"
    ]
    assert codes(judge(policies, dns=("worker-1",))) == []


def test_a_requester_that_is_no_node_is_told_so(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text("node: {}\n"))
    decision = judge(policies, dns=("worker-1",), requester=Requester("system:node:worker-1"))
    assert codes(decision) == ["node.not_found"]
    assert "is no node (a node is system:node:<name> in group system:nodes)" in (
        decision.violations[0].message
    )


def test_unknown_node_facts_deny_with_the_reason(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text(ALL_TYPES))
    decision = judge(policies, dns=("worker-1",), facts=StaticFacts(reason="watch not synced"))
    assert (decision.verdict, codes(decision)) == (Verdict.DENIED, ["node.unknown"])
    assert decision.violations[0].message.endswith("cannot be told now: watch not synced")


def test_uri_and_email_sans_are_not_bound(tmp_path: Path) -> None:
    text = policy_text(ALL_TYPES).replace(
        '        usages: ["digital signature"',
        '        uris: {values: ["spiffe://cluster.local/**"]}\n        usages: ["digital signature"',
    )
    policies = loaded(tmp_path, text)
    pem = build_csr(common_name=NODE.username, uris=["spiffe://cluster.local/x"])
    obj = parse_csr_object(
        {
            "metadata": {"name": "u"},
            "spec": {
                "signerName": SIGNER,
                "request": base64.b64encode(pem).decode(),
                "usages": ["digital signature", "server auth"],
                "username": NODE.username,
                "groups": list(NODE.groups),
            },
        }
    )
    decision = evaluate_create(obj, NODE, policies, EngineOptions(), facts=FACTS)
    assert codes(decision) == []


@dataclass
class CountingFacts:
    """Cluster facts that count their Node look-ups."""

    lookups: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    claim_answer: ClaimAnswer = ("worker-1",)

    def node_addresses(self, name: str) -> NodeAnswer:
        self.lookups.append(name)
        return WORKER_1

    def nodes_with_address(self, key: str) -> ClaimAnswer:
        self.claims.append(key)
        return self.claim_answer

    def pending_csrs(self, signer_name: str, username: str, *, excluding: str) -> PendingAnswer:
        return 0


def test_the_node_is_looked_up_once_per_review_whatever_the_rules(tmp_path: Path) -> None:
    other_rules = "".join(
        f"""\
    - name: bound-{n}
      allowed: {{dnsNames: {{values: ["other-{n}"]}}, usages: ["server auth"]}}
      constraints: {{node: {{sansFromAddresses: [Hostname]}}}}
"""
        for n in range(5)
    )
    policies = loaded(tmp_path, policy_text(ALL_TYPES, rules=other_rules))
    facts = CountingFacts()
    assert codes(judge(policies, dns=("worker-1",), facts=facts)) == []
    assert facts.lookups == ["worker-1"]


# ---- the pending quota --------------------------------------------------------------------------


def pending(count: int, *, also: tuple[str, ...] = ()) -> StaticFacts:
    names = tuple(f"p{n}" for n in range(count)) + also
    return StaticFacts(nodes={"worker-1": WORKER_1}, pending={(SIGNER, NODE.username): names})


def test_the_quota_allows_up_to_max_pending_at_once(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text("maxPending: 3\n"))
    assert codes(judge(policies, dns=("worker-1",), facts=pending(2))) == []
    decision = judge(policies, dns=("worker-1",), facts=pending(3))
    assert codes(decision) == ["requester.too_many_pending"]
    assert decision.violations[0].message == (
        "requester 'system:node:worker-1' has 3 pending CSR(s) of signer 'example.com/serving'; "
        "rule 'bound' allows at most 3 (maxPending)"
    )


def test_the_csr_judged_is_not_counted_against_itself(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text("maxPending: 3\n"))
    facts = pending(2, also=("csr-1",))
    assert codes(judge(policies, dns=("worker-1",), facts=facts, name="csr-1")) == []
    assert codes(judge(policies, dns=("worker-1",), facts=facts, name="csr-2")) == [
        "requester.too_many_pending"
    ]


def test_the_quota_is_only_counted_at_admission(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text("maxPending: 1\n"))
    assert codes(judge(policies, dns=("worker-1",), facts=pending(5), admission=False)) == []
    unknown = StaticFacts(reason="no cluster")
    assert codes(judge(policies, dns=("worker-1",), facts=unknown, admission=False)) == []


def test_an_unknown_count_denies_with_the_reason(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text("maxPending: 3\n"))
    decision = judge(policies, dns=("worker-1",), facts=StaticFacts(reason="watch not synced"))
    assert codes(decision) == ["requester.pending_unknown"]
    assert decision.violations[0].message.endswith("cannot be counted now: watch not synced")


# ---- addresses another Node lists too -----------------------------------------------------------

WORKER_2 = (NodeAddress("InternalIP", "10.0.0.16"), NodeAddress("Hostname", "worker-2"))


def sharing(*extra: NodeAddress, others: int = 1) -> StaticFacts:
    """worker-1, and `others` Nodes (worker-2, worker-3, ...) that also list `extra`."""
    nodes: dict[str, tuple[NodeAddress, ...]] = {"worker-1": WORKER_1}
    for n in range(2, 2 + others):
        nodes[f"worker-{n}"] = (*WORKER_2, *extra)
    return StaticFacts(nodes=nodes, pending={})


def test_sharing_defaults_to_deny_and_loads_allow_and_refuses_others(tmp_path: Path) -> None:
    binding = loaded(tmp_path, policy_text(ALL_TYPES)).policies[0].rules[0].constraints.node
    assert binding is not None and binding.allow_shared is False
    _, problems = load(
        tmp_path, policy_text("node: {sansFromAddresses: [Hostname], sharedAddresses: Warn}\n")
    )
    assert problems == [
        f"{tmp_path}/p.yaml:14: spec.rules[0].constraints.node.sharedAddresses: must be one of "
        "'Deny', 'Allow', got 'Warn'"
    ]


def test_shared_addresses_without_bound_sans_is_a_warning(tmp_path: Path) -> None:
    policies, problems = load(tmp_path, policy_text("node: {sharedAddresses: Allow}\n"))
    assert policies is not None
    assert problems == [
        f"{tmp_path}/p.yaml:14: spec.rules[0].constraints.node.sharedAddresses: warning: "
        "sharedAddresses only judges SANs bound by sansFromAddresses, which this binding does "
        "not list; drop it or list address types"
    ]


def test_an_ip_address_another_node_lists_too_is_refused_to_both(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text(ALL_TYPES))
    facts = sharing(NodeAddress("InternalIP", "10.0.0.15"))
    decision = judge(policies, dns=("worker-1",), ips=("10.0.0.15", "203.0.113.7"), facts=facts)
    assert decision.verdict is Verdict.DENIED
    assert [(v.code, v.field) for v in decision.violations] == [
        ("node.address_shared", "spec.request.ipAddresses[0]")
    ]
    assert decision.violations[0].message == (
        "IP address '10.0.0.15' is an address of Node 'worker-1' and also of Node 'worker-2': "
        "an address two Nodes list proves neither's (sharedAddresses: Deny)"
    )
    worker_2 = Requester("system:node:worker-2", NODE.groups)
    theirs = judge(policies, dns=("worker-2",), ips=("10.0.0.15",), requester=worker_2, facts=facts)
    assert [(v.code, v.message) for v in theirs.violations] == [
        (
            "node.address_shared",
            "IP address '10.0.0.15' is an address of Node 'worker-2' and also of Node "
            "'worker-1': an address two Nodes list proves neither's (sharedAddresses: Deny)",
        )
    ]
    assert (
        codes(
            judge(policies, dns=("worker-2",), ips=("10.0.0.16",), requester=worker_2, facts=facts)
        )
        == []
    )


@pytest.mark.parametrize(
    ("listed", "dns", "ips"),
    [
        (NodeAddress("ExternalIP", "::ffff:10.0.0.15"), (), ("10.0.0.15",)),  # another type
        (NodeAddress("Hostname", "WORKER-1."), ("worker-1",), ()),  # a name, compared as one
        (
            NodeAddress("InternalDNS", "ip-10-0-0-15.ec2.internal"),
            ("ip-10-0-0-15.ec2.internal",),
            (),
        ),
    ],
)
def test_any_type_of_address_of_another_node_is_shared(
    tmp_path: Path, listed: NodeAddress, dns: tuple[str, ...], ips: tuple[str, ...]
) -> None:
    policies = loaded(tmp_path, policy_text(ALL_TYPES))
    assert codes(judge(policies, dns=dns, ips=ips, facts=sharing(listed))) == [
        "node.address_shared"
    ]


def test_the_message_names_a_few_of_the_other_nodes(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text(ALL_TYPES))
    facts = sharing(NodeAddress("ExternalIP", "203.0.113.7"), others=5)
    decision = judge(policies, ips=("203.0.113.7",), facts=facts)
    assert [v.message for v in decision.violations] == [
        "IP address '203.0.113.7' is an address of Node 'worker-1' and also of Node "
        "'worker-2', 'worker-3', 'worker-4' and 2 more: an address two Nodes list proves "
        "neither's (sharedAddresses: Deny)"
    ]


def test_allow_lets_a_shared_address_pass_and_asks_nobody(tmp_path: Path) -> None:
    text = policy_text(
        "node: {sansFromAddresses: [InternalIP, ExternalIP], sharedAddresses: Allow}\n"
    )
    policies = loaded(tmp_path, text)
    facts = sharing(NodeAddress("ExternalIP", "203.0.113.7"), others=5)
    assert codes(judge(policies, ips=("203.0.113.7", "10.0.0.15"), facts=facts)) == []
    counting = CountingFacts()
    assert codes(judge(policies, ips=("10.0.0.15",), facts=counting)) == []
    assert counting.claims == []


def test_each_of_the_nodes_own_sans_is_asked_once_and_no_other(tmp_path: Path) -> None:
    other_rules = """\
    - name: also-bound
      allowed: {ipAddresses: {values: ["10.0.0.0/8"]}, usages: ["server auth"]}
      constraints: {node: {sansFromAddresses: [InternalIP]}}
"""
    policies = loaded(tmp_path, policy_text(ALL_TYPES, rules=other_rules))
    facts = CountingFacts()
    decision = judge(
        policies,
        dns=("worker-1", "Worker-1", "other"),
        ips=("10.0.0.15", "10.9.9.9"),
        facts=facts,
    )
    assert decision.verdict is Verdict.DENIED  # "other" and 10.9.9.9 are no address of it
    assert "node.address_shared" not in codes(decision)
    assert (facts.lookups, facts.claims) == (["worker-1"], ["dns:worker-1", "ip:10.0.0.15"])


def test_a_binding_without_bound_sans_asks_nobody(tmp_path: Path) -> None:
    # `node: {}` only requires the Node to exist: its SANs are the allow-list's alone.
    policies = loaded(tmp_path, policy_text("node: {}\n"))
    facts = CountingFacts(claim_answer=("worker-1", "worker-2"))
    assert codes(judge(policies, dns=("worker-1",), facts=facts)) == []
    assert (facts.lookups, facts.claims) == (["worker-1"], [])


def test_claimants_that_cannot_be_told_deny_the_san(tmp_path: Path) -> None:
    policies = loaded(tmp_path, policy_text(ALL_TYPES))
    facts = CountingFacts(claim_answer=Unknown("the Node cache is stale"))
    decision = judge(policies, dns=("worker-1",), ips=("10.0.0.15",), facts=facts)
    assert [(v.code, v.field) for v in decision.violations] == [
        ("node.unknown", "spec.request.dnsNames[0]"),
        ("node.unknown", "spec.request.ipAddresses[0]"),
    ]
    assert decision.violations[0].message == (
        "rule 'bound' needs the Nodes that list DNS name 'worker-1', which cannot be told now: "
        "the Node cache is stale"
    )


def test_a_stored_csr_judged_again_is_refused_a_shared_address(tmp_path: Path) -> None:
    # The approval recheck, issuance and the approval controller judge with admission=False.
    policies = loaded(tmp_path, policy_text(ALL_TYPES))
    facts = sharing(NodeAddress("InternalIP", "10.0.0.15"))
    assert codes(judge(policies, ips=("10.0.0.15",), facts=facts, admission=False)) == [
        "node.address_shared"
    ]
