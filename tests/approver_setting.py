"""Policies, CSR objects and a controller over tests/fake_objects_api, for the approver's tests."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, Configuration
from prometheus_client import CollectorRegistry

from tests.builders import build_csr
from tests.fake_objects_api import Store, serving
from webhook.approver.controller import Controller
from webhook.approver.metrics import ApproverMetrics
from webhook.approver.policies import PolicyDirectory
from webhook.approver.queue import WorkQueue
from webhook.facts import NO_CLUSTER, ClusterFacts
from webhook.policy.loader import load_policies

SIGNER = "example.com/auto"
MANUAL_SIGNER = "example.com/manual"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def auto_policy(*, approve: bool = True, deny: bool = False) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: policy.csr-webhook.io/v1alpha1
        kind: SignerPolicy
        metadata: {{name: auto}}
        spec:
          signerNames: ["{SIGNER}"]
          rules:
            - name: clients
              allowed:
                subject:
                  commonName: {{values: ["client-*"], required: true}}
                usages: ["digital signature", "client auth"]
          approval:
            auto: {{approve: {str(approve).lower()}, deny: {str(deny).lower()}}}
        ---
        apiVersion: policy.csr-webhook.io/v1alpha1
        kind: SignerPolicy
        metadata: {{name: manual}}
        spec:
          signerNames: ["{MANUAL_SIGNER}"]
          rules:
            - name: anyone
              allowed:
                subject:
                  commonName: {{values: ["*"], required: true}}
                usages: ["digital signature", "client auth"]
        """
    )


NODE_POLICY = textwrap.dedent(
    f"""\
    apiVersion: policy.csr-webhook.io/v1alpha1
    kind: SignerPolicy
    metadata: {{name: nodes}}
    spec:
      signerNames: ["{SIGNER}"]
      rules:
        - name: own-node
          requesters: {{users: ["system:node:*"], groups: ["system:nodes"]}}
          allowed:
            subject:
              commonName: {{values: ["system:node:${{node}}"], required: true}}
            dnsNames: {{values: ["**"]}}
            usages: ["digital signature", "server auth"]
          constraints:
            node: {{mustExist: true, sansFromAddresses: [Hostname]}}
      approval:
        auto: {{approve: true, deny: true}}
    """
)


def node_csr_object(name: str, node: str) -> dict[str, Any]:
    """A serving CSR of Node `node`, as its kubelet asks: CN system:node:<node>, its name."""
    obj = csr_object(name, f"system:node:{node}", dns_names=(node,))
    obj["spec"].update(
        usages=["digital signature", "server auth"],
        username=f"system:node:{node}",
        groups=["system:nodes", "system:authenticated"],
    )
    return obj


def csr_object(
    name: str, common_name: str, signer: str = SIGNER, *, dns_names: tuple[str, ...] = ()
) -> dict[str, Any]:
    pem = build_csr(common_name=common_name, dns_names=dns_names)
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": signer,
            "usages": ["digital signature", "client auth"],
            "username": "alice",
            "groups": ["system:authenticated"],
        },
        "status": {},
    }


def conditions(store: Store, name: str) -> list[dict[str, Any]]:
    stored = store.get(f"{CSRS}/{name}")
    assert stored is not None
    return list(stored.get("status", {}).get("conditions") or [])


@dataclass
class Setting:
    store: Store
    controller: Controller
    metrics: ApproverMetrics
    policies: PolicyDirectory
    leader: list[bool]

    def add(self, name: str, common_name: str, signer: str = SIGNER) -> None:
        self.store.put(f"{CSRS}/{name}", csr_object(name, common_name, signer))

    def decisions(self, result: str, policy: str = "auto") -> float:
        value = self.metrics.registry.get_sample_value(
            "csr_webhook_approver_decisions_total", {"policy": policy, "result": result}
        )
        return value or 0.0


def api_client(url: str) -> ApiClient:
    configuration = Configuration()
    configuration.host = url
    return ApiClient(configuration)


@contextmanager
def approver_setting(
    tmp_path: Path, policy: str, *, facts: ClusterFacts = NO_CLUSTER, **queue: Any
) -> Iterator[Setting]:
    (tmp_path / "auto.yaml").write_text(policy)
    result = load_policies([tmp_path])
    assert result.policy_set is not None, [str(p) for p in result.problems]
    policies = PolicyDirectory(tmp_path, result.policy_set)
    store = Store()
    metrics = ApproverMetrics(CollectorRegistry())
    leader = [True]
    with serving(store) as url:
        controller = Controller(
            api_client(url),
            policies,
            facts=facts,
            metrics=metrics,
            is_leader=lambda: leader[0],
            queue=WorkQueue(**queue),
            identity="test-approver",
        )
        try:
            yield Setting(store, controller, metrics, policies, leader)
        finally:
            controller.stop()
