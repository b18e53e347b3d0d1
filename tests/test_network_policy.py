"""manifests/network-policy: only the API server reaches the admission port, only the
monitoring namespace the metrics port, and the placeholder CIDR cannot be applied as is."""

from __future__ import annotations

import copy
import ipaddress

import kubernetes_validate
import pytest

from tests.test_manifests import MANIFESTS, MIN_KUBERNETES, NAMESPACE, Obj, _port, one, render

PLACEHOLDER = "REPLACE_WITH_API_SERVER_CIDR"


@pytest.fixture(scope="module")
def policy() -> Obj:
    return one(render(MANIFESTS / "network-policy"), "NetworkPolicy")


def _with_cidr(policy: Obj, cidr: str) -> Obj:
    applied = copy.deepcopy(policy)
    applied["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"] = cidr
    applied["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = cidr
    return applied


def test_network_policy_matches_the_kubernetes_schema(policy: Obj) -> None:
    for version in sorted({MIN_KUBERNETES, kubernetes_validate.latest_version()}):
        kubernetes_validate.validate(_with_cidr(policy, "10.0.0.0/28"), version, strict=True)


def test_placeholder_is_not_a_cidr_so_it_cannot_be_applied_by_mistake(policy: Obj) -> None:
    cidr = policy["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"]
    assert cidr == PLACEHOLDER
    assert policy["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] == PLACEHOLDER
    with pytest.raises(ValueError, match="does not appear to be"):
        ipaddress.ip_network(cidr)


def test_selects_the_webhook_pods_and_admits_only_the_two_ports() -> None:
    objects = render(MANIFESTS / "base")
    policy = one(render(MANIFESTS / "network-policy"), "NetworkPolicy")
    deployment = one(objects, "Deployment", "csr-webhook")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    spec = policy["spec"]
    assert policy["metadata"]["namespace"] == NAMESPACE
    assert spec["podSelector"]["matchLabels"].items() <= labels.items()
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    [api_server] = spec["egress"]  # the cluster caches' list and watch, nothing else
    assert [set(peer) for peer in api_server["to"]] == [{"ipBlock"}]
    assert [(p["protocol"], p["port"]) for p in api_server["ports"]] == [
        ("TCP", 443),
        ("TCP", 6443),
    ]
    admission, metrics = spec["ingress"]
    assert [set(peer) for peer in admission["from"]] == [{"ipBlock"}]
    assert [(p["protocol"], _port(container, p["port"])) for p in admission["ports"]] == [
        ("TCP", 8443)
    ]
    assert metrics["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert [(p["protocol"], _port(container, p["port"])) for p in metrics["ports"]] == [
        ("TCP", 9090)
    ]
