"""The approval controller's manifests (manifests/base/approver*.yaml) against its command line,
its RBAC against what it does, and the shipped policies against the identity it runs as."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_manifests import NAMESPACE, POLICIES_CONFIGMAP, Obj, one, rendered
from webhook.cli import build_parser
from webhook.matching.variables import Requester
from webhook.policy.loader import load_policies
from webhook.policy.model import SignerPolicy

ROOT = Path(__file__).resolve().parent.parent
NAME = "csr-webhook-approver"


@pytest.fixture(params=["base", "cert-manager"])
def objects(request: pytest.FixtureRequest) -> list[Obj]:
    return rendered(request.param)


def _pod(objects: list[Obj]) -> Obj:
    pod: Obj = one(objects, "Deployment", NAME)["spec"]["template"]
    return pod


def _container(objects: list[Obj]) -> Obj:
    [container] = _pod(objects)["spec"]["containers"]
    return dict(container)


def _args(objects: list[Obj]) -> Any:
    container = _container(objects)
    assert container["command"] == ["csr-webhook", "approve"]
    return build_parser().parse_args(["approve", *container["args"]])


def _field_env(container: Obj) -> dict[str, str]:
    return {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in container.get("env", [])
        if "fieldRef" in e.get("valueFrom", {})
    }


def _auto_policies() -> list[SignerPolicy]:
    result = load_policies([ROOT / "policies"])
    assert result.policy_set is not None
    return [p for p in result.policy_set.policies if p.approval.auto is not None]


def _controller_identity(objects: list[Obj]) -> Requester:
    """Who the API server (and so the webhook's approval gate) sees the controller as."""
    pod = _pod(objects)["spec"]
    account = one(objects, "ServiceAccount", pod["serviceAccountName"])
    namespace = account["metadata"]["namespace"]
    name = account["metadata"]["name"]
    return Requester(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


def test_two_replicas_run_approve_with_valid_flags(objects: list[Obj]) -> None:
    deployment = one(objects, "Deployment", NAME)
    assert deployment["spec"]["replicas"] == 2
    args = _args(objects)
    env = _field_env(_container(objects))
    assert (
        args.lease_namespace == "$(POD_NAMESPACE)" and env["POD_NAMESPACE"] == "metadata.namespace"
    )
    assert args.identity == "$(POD_NAME)" and env["POD_NAME"] == "metadata.name"
    assert args.lease_name == NAME
    assert args.kubeconfig is None  # in-cluster credentials
    assert args.lease_duration > args.renew_deadline > args.retry_period * 1.2
    pdb = one(objects, "PodDisruptionBudget", NAME)
    labels = _pod(objects)["metadata"]["labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    webhook_labels = one(objects, "Deployment", "csr-webhook")["spec"]["template"]["metadata"]
    assert not pdb["spec"]["selector"]["matchLabels"].items() <= webhook_labels["labels"].items()


def test_policies_are_the_webhooks_configmap_mounted_as_a_directory(objects: list[Obj]) -> None:
    pod, container = _pod(objects), _container(objects)
    args = _args(objects)
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == args.policies]
    assert mount.get("readOnly") is True and "subPath" not in mount
    [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == POLICIES_CONFIGMAP
    webhook = one(objects, "Deployment", "csr-webhook")["spec"]["template"]["spec"]
    webhook_args = webhook["containers"][0]["args"]
    assert f"--policies={args.policies}" in webhook_args


def test_probes_and_security_context(objects: list[Obj]) -> None:
    container, pod = _container(objects), _pod(objects)["spec"]
    args = _args(objects)
    port = int(args.metrics_bind.rpartition(":")[2])
    [declared] = [p for p in container["ports"] if p["name"] == "metrics"]
    assert declared["containerPort"] == port
    assert args.metrics_bind.rpartition(":")[0] == "0.0.0.0"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"], get["scheme"]) == (path, "metrics", "HTTP")
    webhook_pod = one(objects, "Deployment", "csr-webhook")["spec"]["template"]["spec"]
    assert pod["securityContext"] == webhook_pod["securityContext"]
    assert container["securityContext"] == webhook_pod["containers"][0]["securityContext"]
    assert pod["automountServiceAccountToken"] is True  # it calls the API server
    assert pod["serviceAccountName"] == NAME
    assert container["image"] == webhook_pod["containers"][0]["image"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])


def test_cluster_role_grants_exactly_what_the_controller_does(objects: list[Obj]) -> None:
    role = one(objects, "ClusterRole", NAME)
    signers = sorted({p.text for policy in _auto_policies() for p in policy.signer_names})
    assert role["rules"] == [
        {
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests/approval"],
            "verbs": ["update"],
        },
        {
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["signers"],
            "resourceNames": signers,
            "verbs": ["approve"],
        },
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
    ]
    binding = one(objects, "ClusterRoleBinding", NAME)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": NAME,
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]


def test_lease_role_is_create_and_get_update_on_the_one_lease(objects: list[Obj]) -> None:
    args = _args(objects)
    role = one(objects, "Role", "csr-webhook-approver-lease")
    assert role["metadata"]["namespace"] == NAMESPACE  # = $(POD_NAMESPACE) of the pods
    assert one(objects, "Deployment", NAME)["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [args.lease_name],
            "verbs": ["get", "update"],
        },
    ]
    binding = one(objects, "RoleBinding", "csr-webhook-approver-lease")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]


def test_every_auto_policy_admits_the_controller_and_rbac_lets_it_approve_its_signers(
    objects: list[Obj],
) -> None:
    """A policy with approval.auto whose approvers leave the controller out would have the
    webhook refuse every approval it makes; a signer missing from the ClusterRole, RBAC."""
    identity = _controller_identity(objects)
    role = one(objects, "ClusterRole", NAME)
    [signers_rule] = [r for r in role["rules"] if r["resources"] == ["signers"]]
    policies = _auto_policies()
    assert policies, "no shipped policy sets approval.auto"
    for policy in policies:
        approvers = policy.approval.approvers
        assert approvers is None or approvers.includes(identity), (policy.name, identity)
        assert not policy.approval.self_approval
        for pattern in policy.signer_names:
            assert pattern.is_literal, f"{policy.name}: RBAC resourceNames need exact signers"
            assert pattern.text in signers_rule["resourceNames"], (policy.name, pattern.text)


def test_the_agreement_check_fails_for_a_policy_that_leaves_the_controller_out(
    objects: list[Obj], tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(
        (ROOT / "policies" / "kubelet-serving.yaml")
        .read_text()
        .replace('serviceAccounts: ["csr-webhook/csr-webhook-approver"]', 'users: ["carol"]')
    )
    result = load_policies([tmp_path])
    assert result.policy_set is not None
    [policy] = result.policy_set.policies
    assert policy.approval.auto is not None and policy.approval.approvers is not None
    assert not policy.approval.approvers.includes(_controller_identity(objects))
