"""A corpus of kubelet-serving CSRs and the Nodes they are judged against.

Each case names the node that sends it (or none: a user who is not a node), its subject and
its SANs; the CSR itself is made with cryptography when asked for (tests/builders.py keys, in
memory only). The same corpus is fed to csr-webhook and, once and outside the repository, to
postfinance/kubelet-csr-approver, for docs/kubelet-csr-approver.md.
Each case carries what csr-webhook does with it (`ours`), which
tests/e2e/test_serving_corpus.py asserts through the real API server. The addresses are
private or documentation ranges: they are only ever SANs, never a destination.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from tests.builders import build_csr

SERVING_SIGNER = "kubernetes.io/kubelet-serving"
NOT_A_NODE = ("--as", "alice", "--as-group", "e2e-requesters")  # conftest's requester_rbac


@dataclass(frozen=True, slots=True, kw_only=True)
class CorpusNode:
    """A Node object as a kubelet would have registered it: a name and status.addresses."""

    name: str
    addresses: tuple[tuple[str, str], ...]  # (type, address), in the order the kubelet reports

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": {"csr-webhook.e2e/corpus": "serving"}},
            "status": {
                "addresses": [{"type": kind, "address": value} for kind, value in self.addresses]
            },
        }

    def of_type(self, *kinds: str) -> list[str]:
        return [value for kind, value in self.addresses if kind in kinds]


NODES: tuple[CorpusNode, ...] = (
    CorpusNode(
        name="worker-1",
        addresses=(
            ("InternalIP", "10.0.1.11"),
            ("ExternalIP", "203.0.113.11"),
            ("Hostname", "worker-1"),
            ("InternalDNS", "worker-1.int.example.test"),
        ),
    ),
    CorpusNode(
        name="worker-2",
        addresses=(
            ("InternalIP", "10.0.1.12"),
            ("ExternalIP", "203.0.113.12"),
            ("Hostname", "worker-2"),
            ("InternalDNS", "worker-2.int.example.test"),
        ),
    ),
    # Dual stack: an IPv4 and an IPv6 InternalIP.
    CorpusNode(
        name="worker-3",
        addresses=(
            ("InternalIP", "10.0.1.13"),
            ("InternalIP", "fd00:10::13"),
            ("Hostname", "worker-3"),
        ),
    ),
    # A new node whose names DNS does not know yet (the peer's run leaves it out of DNS).
    CorpusNode(
        name="worker-4",
        addresses=(
            ("InternalIP", "10.0.1.14"),
            ("Hostname", "worker-4"),
            ("InternalDNS", "worker-4.int.example.test"),
        ),
    ),
    # Its name begins with another node's name: "worker-1" is a prefix of "worker-10".
    CorpusNode(
        name="worker-10",
        addresses=(
            ("InternalIP", "10.0.1.20"),
            ("ExternalIP", "203.0.113.20"),
            ("Hostname", "worker-10"),
            ("InternalDNS", "worker-10.int.example.test"),
        ),
    ),
)
NODE_NAMES = frozenset(node.name for node in NODES)
MISSING_NODE = "worker-9"  # sends CSRs, has no Node object


@dataclass(frozen=True, slots=True)
class Outcome:
    """What csr-webhook does with a case under the shipped policies and the corpus Nodes:
    admitted, approved by `csr-webhook approve` and signed; denied at admission with exactly
    the violation codes `codes`; or refused by the API server's own admission (`refused_by`,
    the plugin) before any webhook sees it. `lifetime.missing` joins the codes of a CSR whose
    shape no rule permits: the mutating webhook sets the lifetime default only for a CSR some
    rule would allow apart from its lifetime (engine.plan_mutation)."""

    codes: tuple[str, ...] = ()
    refused_by: str = ""

    @property
    def approved(self) -> bool:
        return not self.codes and not self.refused_by

    def text(self) -> str:
        if self.refused_by:
            return f"refused by {self.refused_by}"
        if self.codes:
            return "denied: " + ", ".join(self.codes)
        return "approved, signed"


APPROVED = Outcome()
# NodeRestriction (plugin/pkg/admission/noderestriction) lets a node create a kubelet CSR only
# with CN=system:node:<its own name>, compared exactly, in the mutating phase.
NODE_RESTRICTION = Outcome(refused_by="NodeRestriction")


def denied(*codes: str) -> Outcome:
    return Outcome(codes=tuple(sorted(codes)))


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingCase:
    """One kubelet-serving CSR: who sends it, and what it asks for."""

    id: str
    description: str
    requester: str | None  # the node that creates it (system:node:<n>); None: alice, no node
    common_name: str
    ours: Outcome
    organization: tuple[str, ...] = ("system:nodes",)
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    key: str = "ecdsa-p256"
    expiration_seconds: int | None = None

    def usages(self) -> list[str]:
        """What the kubelet asks for (pkg/kubelet/certificate: key encipherment for RSA only)."""
        if self.key.startswith("rsa"):
            return ["digital signature", "key encipherment", "server auth"]
        return ["digital signature", "server auth"]

    def request_pem(self) -> bytes:
        return build_csr(
            key=self.key,
            common_name=self.common_name,
            organization=self.organization,
            dns_names=self.dns_names,
            ip_addresses=self.ip_addresses,
            emails=self.emails,
            uris=self.uris,
        )

    def manifest(self, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "request": base64.b64encode(self.request_pem()).decode(),
            "signerName": SERVING_SIGNER,
            "usages": self.usages(),
        }
        if self.expiration_seconds is not None:
            spec["expirationSeconds"] = self.expiration_seconds
        return {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name, "labels": {"csr-webhook.e2e/corpus": "serving"}},
            "spec": spec,
        }

    def impersonation(self) -> tuple[str, ...]:
        """kubectl's flags to send it as its requester (the admin impersonates)."""
        if self.requester is None:
            return NOT_A_NODE
        return ("--as", f"system:node:{self.requester}", "--as-group", "system:nodes")


def _case(
    case_id: str,
    description: str,
    node: str | None = "worker-1",
    *,
    ours: Outcome,
    **fields: Any,
) -> ServingCase:
    cn = fields.pop("common_name", f"system:node:{node or 'worker-1'}")
    return ServingCase(
        id=case_id, description=description, requester=node, common_name=cn, ours=ours, **fields
    )


CASES: tuple[ServingCase, ...] = (
    # --- good: the node's own addresses -------------------------------------------------------
    _case(
        "good-kubelet",
        "what the kubelet sends: Hostname, InternalDNS, InternalIP, ExternalIP",
        dns_names=("worker-1", "worker-1.int.example.test"),
        ip_addresses=("10.0.1.11", "203.0.113.11"),
        ours=APPROVED,
    ),
    _case("good-hostname", "Hostname only", dns_names=("worker-1",), ours=APPROVED),
    _case(
        "good-internal-dns",
        "InternalDNS only",
        dns_names=("worker-1.int.example.test",),
        ours=APPROVED,
    ),
    _case("good-internal-ip", "InternalIP only", ip_addresses=("10.0.1.11",), ours=APPROVED),
    _case("good-external-ip", "ExternalIP only", ip_addresses=("203.0.113.11",), ours=APPROVED),
    _case(
        "good-hostname-and-ip",
        "Hostname and InternalIP",
        dns_names=("worker-1",),
        ip_addresses=("10.0.1.11",),
        ours=APPROVED,
    ),
    _case(
        "good-rsa",
        "Hostname and InternalIP, RSA 2048 key (usages add key encipherment)",
        dns_names=("worker-1",),
        ip_addresses=("10.0.1.11",),
        key="rsa-2048",
        ours=APPROVED,
    ),
    _case(
        "good-other-node",
        "worker-2's own Hostname and InternalIP",
        node="worker-2",
        dns_names=("worker-2",),
        ip_addresses=("10.0.1.12",),
        ours=APPROVED,
    ),
    _case(
        "good-dual-stack",
        "worker-3's Hostname and both InternalIPs (IPv4, IPv6)",
        node="worker-3",
        dns_names=("worker-3",),
        ip_addresses=("10.0.1.13", "fd00:10::13"),
        ours=APPROVED,
    ),
    _case(
        "good-prefix-named-node",
        "worker-10's own Hostname and InternalIP",
        node="worker-10",
        dns_names=("worker-10",),
        ip_addresses=("10.0.1.20",),
        ours=APPROVED,
    ),
    # --- foreign addresses: another node's ------------------------------------------------------
    _case(
        "foreign-ip",
        "worker-2's InternalIP",
        ip_addresses=("10.0.1.12",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "foreign-external-ip",
        "worker-2's ExternalIP",
        ip_addresses=("203.0.113.12",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "foreign-ip-beside-own-name",
        "own Hostname, worker-2's InternalIP",
        dns_names=("worker-1",),
        ip_addresses=("10.0.1.12",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "foreign-dns",
        "worker-2's Hostname",
        dns_names=("worker-2",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "foreign-internal-dns",
        "worker-2's InternalDNS",
        dns_names=("worker-2.int.example.test",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "foreign-dns-by-prefix",
        "worker-10's Hostname, which begins with worker-1",
        dns_names=("worker-10",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "foreign-dns-by-prefix-with-ip",
        "worker-10's Hostname and InternalIP",
        dns_names=("worker-10",),
        ip_addresses=("10.0.1.20",),
        ours=denied("node.san_not_an_address"),
    ),
    # --- addresses no Node has -----------------------------------------------------------------
    _case(
        "unowned-ip",
        "an IP in the nodes' subnet no Node has",
        ip_addresses=("10.0.1.99",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "unowned-dns-by-prefix",
        "worker-11, no Node has it",
        dns_names=("worker-11",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "unowned-dns-suffix",
        "own name as a prefix of a name in someone else's domain",
        dns_names=("worker-1.attacker.example",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "outside-ip",
        "an IP outside every node subnet",
        ip_addresses=("192.0.2.77",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "unresolvable-own-names",
        "worker-4's own Hostname, InternalDNS and InternalIP; DNS does not know its names",
        node="worker-4",
        dns_names=("worker-4", "worker-4.int.example.test"),
        ip_addresses=("10.0.1.14",),
        ours=APPROVED,
    ),
    # --- case and form tricks --------------------------------------------------------------------
    _case(
        "case-upper-hostname", "own Hostname in upper case", dns_names=("WORKER-1",), ours=APPROVED
    ),
    _case(
        "case-mixed-internal-dns",
        "own InternalDNS in mixed case",
        dns_names=("Worker-1.Int.Example.Test",),
        ours=APPROVED,
    ),
    _case(
        "case-kubernetes-default-svc",
        "the API server's in-cluster name, upper case",
        dns_names=("KUBERNETES.default.svc",),
        ours=denied("deny.dns", "node.san_not_an_address"),
    ),
    _case(
        "case-cluster-local",
        "the API server's full in-cluster name, mixed case",
        dns_names=("Kubernetes.Default.Svc.Cluster.Local",),
        ours=denied("deny.dns", "node.san_not_an_address"),
    ),
    _case(
        "prefix-kubernetes-svc",
        "own name as a prefix of an in-cluster service name",
        dns_names=("worker-1.default.svc.cluster.local",),
        ours=denied("deny.dns", "node.san_not_an_address"),
    ),
    _case(
        "trailing-dot",
        "own Hostname with a trailing dot",
        dns_names=("worker-1.",),
        ours=denied("csr.dns_syntax", "dns.not_allowed", "lifetime.missing"),
    ),
    _case(
        "trailing-dot-internal-dns",
        "own InternalDNS with a trailing dot",
        dns_names=("worker-1.int.example.test.",),
        ours=denied("csr.dns_syntax", "dns.not_allowed", "lifetime.missing"),
    ),
    _case(
        "case-common-name",
        "CN system:node:WORKER-1 from worker-1",
        common_name="system:node:WORKER-1",
        dns_names=("worker-1",),
        ours=NODE_RESTRICTION,
    ),
    # --- wildcards --------------------------------------------------------------------------------
    _case(
        "wildcard-below-node",
        "*.worker-1",
        dns_names=("*.worker-1",),
        ours=denied("dns.wildcard_not_allowed", "node.san_not_an_address", "lifetime.missing"),
    ),
    _case(
        "wildcard-node-domain",
        "*.int.example.test: every node's InternalDNS",
        dns_names=("*.int.example.test",),
        ours=denied("dns.wildcard_not_allowed", "node.san_not_an_address", "lifetime.missing"),
    ),
    _case(
        "wildcard-after-own-name",
        "worker-1.*",
        dns_names=("worker-1.*",),
        ours=denied("csr.dns_wildcard", "node.san_not_an_address"),
    ),
    # --- many SANs --------------------------------------------------------------------------------
    _case(
        "many-ips",
        "50 IPs of the nodes' subnet (10.0.1.100-149), none a Node's",
        ip_addresses=tuple(f"10.0.1.{100 + i}" for i in range(50)),
        ours=denied("ip.too_many", "node.san_not_an_address", "lifetime.missing"),
    ),
    _case(
        "many-dns",
        "50 names worker-1-0 ... worker-1-49",
        dns_names=tuple(f"worker-1-{i}" for i in range(50)),
        ours=denied("dns.too_many", "node.san_not_an_address", "lifetime.missing"),
    ),
    _case(
        "own-names-repeated",
        "own Hostname and InternalIP, each 25 times",
        dns_names=("worker-1",) * 25,
        ip_addresses=("10.0.1.11",) * 25,
        ours=denied("dns.too_many", "ip.too_many", "lifetime.missing"),
    ),
    # --- IP forms -----------------------------------------------------------------------------------
    _case(
        "mapped-own-ip",
        "own InternalIP as IPv4-mapped IPv6",
        ip_addresses=("::ffff:10.0.1.11",),
        ours=APPROVED,
    ),
    _case(
        "mapped-foreign-ip",
        "worker-2's InternalIP as IPv4-mapped IPv6",
        ip_addresses=("::ffff:10.0.1.12",),
        ours=denied("node.san_not_an_address"),
    ),
    _case(
        "loopback-ip",
        "own Hostname with 127.0.0.1 and ::1",
        dns_names=("worker-1",),
        ip_addresses=("127.0.0.1", "::1"),
        ours=denied("deny.ip", "node.san_not_an_address"),
    ),
    _case(
        "loopback-only",
        "127.0.0.1 alone",
        ip_addresses=("127.0.0.1",),
        ours=denied("deny.ip", "node.san_not_an_address"),
    ),
    _case(
        "link-local-ip",
        "the metadata address 169.254.169.254 and fe80::1",
        ip_addresses=("169.254.169.254", "fe80::1"),
        ours=denied("deny.ip", "node.san_not_an_address"),
    ),
    _case(
        "localhost-dns",
        "localhost",
        dns_names=("localhost",),
        ours=denied("deny.dns", "node.san_not_an_address"),
    ),
    # --- identity -------------------------------------------------------------------------------------
    _case(
        "other-node-common-name",
        "worker-1 asks with CN system:node:worker-2",
        common_name="system:node:worker-2",
        dns_names=("worker-2",),
        ip_addresses=("10.0.1.12",),
        ours=NODE_RESTRICTION,
    ),
    _case(
        "missing-node",
        "worker-9 (no Node object) asks for its name and an IP of the subnet",
        node=MISSING_NODE,
        dns_names=(MISSING_NODE,),
        ip_addresses=("10.0.1.19",),
        ours=denied("node.not_found", "node.san_not_an_address"),
    ),
    _case(
        "not-a-node",
        "alice, not a node, asks for worker-1's names with CN system:node:worker-1",
        node=None,
        dns_names=("worker-1",),
        ip_addresses=("10.0.1.11",),
        ours=denied("requester.not_permitted"),
    ),
    _case(
        "no-organization",
        "own names, subject without O=system:nodes",
        organization=(),
        dns_names=("worker-1",),
        ip_addresses=("10.0.1.11",),
        ours=denied("subject.required", "lifetime.missing"),
    ),
    # --- SAN kinds and lifetime -------------------------------------------------------------------
    _case("no-sans", "CN and O only, no SAN", ours=denied("csr.san_required", "lifetime.missing")),
    _case(
        "email-san",
        "own names and an email SAN",
        dns_names=("worker-1",),
        ip_addresses=("10.0.1.11",),
        emails=("root@worker-1.int.example.test",),
        ours=denied("email.not_allowed", "lifetime.missing"),
    ),
    _case(
        "uri-san",
        "own InternalIP and a URI SAN",
        ip_addresses=("10.0.1.11",),
        uris=("spiffe://cluster.local/ns/kube-system/sa/admin",),
        ours=denied("uri.not_allowed", "lifetime.missing"),
    ),
    _case(
        "long-lifetime",
        "own names, expirationSeconds of 400 days",
        dns_names=("worker-1",),
        ip_addresses=("10.0.1.11",),
        expiration_seconds=400 * 86400,
        ours=APPROVED,
    ),
)
