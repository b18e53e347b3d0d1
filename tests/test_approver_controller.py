"""The approval controller's workers with real CSRs and policies, against tests/fake_objects_api:
what is approved, denied, left alone, retried, and that nothing is acted on twice."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.approver_setting import (
    CSRS,
    MANUAL_SIGNER,
    NODE_POLICY,
    approver_setting,
    auto_policy,
    conditions,
    csr_object,
    node_csr_object,
)
from webhook.approver.decide import MAX_MESSAGE, denial_message
from webhook.decision import Decision, Verdict, Violation
from webhook.facts import NodeAddress, StaticFacts

DECISIONS = "csr_webhook.approver.decisions"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture
def decision_lines() -> Iterator[list[dict[str, object]]]:
    """The JSON decision lines logged during the test (read off the logger itself: `approve`
    stops them propagating to the root logger)."""
    logger = logging.getLogger(DECISIONS)
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_approves_an_allowed_csr_naming_policy_and_rule(
    tmp_path: Path, decision_lines: list[dict[str, object]]
) -> None:
    with approver_setting(tmp_path, auto_policy()) as setting:
        setting.add("good", "client-a")
        assert setting.controller.process("good") == "approved"
        [condition] = conditions(setting.store, "good")
        assert condition["type"] == "Approved"
        assert condition["status"] == "True"
        assert condition["reason"] == "AutoApproved"
        assert "policy 'auto' rule 'clients'" in condition["message"]
        assert setting.decisions("approved") == 1
        # Its own write comes back through the watch: read again, it is finished.
        assert setting.controller.process("good") == "skipped"
        assert len(conditions(setting.store, "good")) == 1
        assert setting.store.count("PUT", f"{CSRS}/good/approval") == 1
    [line] = decision_lines
    assert line["csr"] == "good"
    assert line["signer"] == "example.com/auto"
    assert line["requester"] == "alice"
    assert line["policy"] == "auto"
    assert line["rule"] == "clients"
    assert line["result"] == "approved"
    assert line["violations"] == []
    assert line["identity"] == "test-approver"


def test_leaves_a_denied_csr_alone_without_auto_deny(
    tmp_path: Path, decision_lines: list[dict[str, object]]
) -> None:
    with approver_setting(tmp_path, auto_policy(deny=False)) as setting:
        setting.add("bad", "server-b")
        assert setting.controller.process("bad") == "left_pending"
        assert conditions(setting.store, "bad") == []
        assert setting.store.count("PUT", f"{CSRS}/bad/approval") == 0
        # Judged once per object and policy version: a resync neither recounts nor relogs.
        assert setting.controller.process("bad") == "unchanged"
        assert setting.decisions("left_pending") == 1
    [line] = decision_lines
    assert line["result"] == "left_pending"
    assert line["violations"] == ["subject.not_allowed"]


def test_denies_a_denied_csr_with_its_violations_when_auto_deny(tmp_path: Path) -> None:
    with approver_setting(tmp_path, auto_policy(deny=True)) as setting:
        setting.add("bad", "server-b")
        assert setting.controller.process("bad") == "denied"
        [condition] = conditions(setting.store, "bad")
        assert condition["type"] == "Denied"
        assert condition["reason"] == "PolicyViolation"
        assert "policy 'auto' denies this request" in condition["message"]
        assert "subject.not_allowed: spec.request.subject.commonName" in condition["message"]
        assert setting.decisions("denied") == 1


def test_an_allowed_csr_is_left_pending_when_auto_only_denies(tmp_path: Path) -> None:
    with approver_setting(tmp_path, auto_policy(approve=False, deny=True)) as setting:
        setting.add("good", "client-a")
        assert setting.controller.process("good") == "left_pending"
        assert conditions(setting.store, "good") == []


def test_skips_finished_csrs_and_signers_without_auto(tmp_path: Path) -> None:
    with approver_setting(tmp_path, auto_policy(deny=True)) as setting:
        setting.add("manual", "anyone", MANUAL_SIGNER)
        assert setting.controller.process("manual") == "skipped"
        for kind in ("Approved", "Denied", "Failed"):
            obj = csr_object(kind.lower(), "server-x")
            obj["status"] = {"conditions": [{"type": kind, "status": "True"}]}
            setting.store.put(f"{CSRS}/{kind.lower()}", obj)
            assert setting.controller.process(kind.lower()) == "skipped"
        assert setting.controller.process("deleted") == "gone"
        assert not [r for r in setting.store.requests if r[0] == "PUT"]


def test_a_conflict_is_read_again_and_a_csr_approved_meanwhile_is_not_approved_twice(
    tmp_path: Path,
) -> None:
    with approver_setting(tmp_path, auto_policy(), backoff_base=0.05) as setting:
        setting.add("raced", "client-r")
        setting.store.script("PUT", f"{CSRS}/raced/approval", 409)
        assert setting.controller.process("raced") == "conflict"
        assert setting.controller.queue.waiting == 1  # read again after the first backoff
        # What the 409 stood for: someone else approved it in between.
        obj = setting.store.get(f"{CSRS}/raced")
        assert obj is not None
        obj["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "Other"}]}
        setting.store.put(f"{CSRS}/raced", obj)
        assert setting.controller.queue.get(5) == "raced"
        assert setting.controller.process("raced") == "skipped"
        setting.controller.queue.done("raced")
        assert [c["reason"] for c in conditions(setting.store, "raced")] == ["Other"]


def test_a_standby_writes_nothing(tmp_path: Path) -> None:
    with approver_setting(tmp_path, auto_policy()) as setting:
        setting.leader[0] = False
        setting.add("good", "client-a")
        assert setting.controller.process("good") == "not_leader"
        assert conditions(setting.store, "good") == []


def test_one_failing_csr_does_not_stall_the_others_and_is_retried_with_backoff(
    tmp_path: Path,
) -> None:
    with approver_setting(tmp_path, auto_policy(), backoff_base=0.05) as setting:
        setting.add("flaky", "client-f")
        setting.store.script("GET", f"{CSRS}/flaky", 500, 500, 503)
        for index in range(5):
            setting.add(f"fine-{index}", f"client-{index}")
        setting.controller.start()
        setting.controller.enqueue(["flaky", *(f"fine-{i}" for i in range(5))])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and setting.decisions("approved") < 6:
            time.sleep(0.02)
        assert setting.decisions("approved") == 6
        for name in ["flaky", *(f"fine-{i}" for i in range(5))]:
            assert [c["type"] for c in conditions(setting.store, name)] == ["Approved"]
        assert setting.store.count("GET", f"{CSRS}/flaky") == 4
        retries = setting.metrics.registry.get_sample_value("csr_webhook_approver_retries_total")
        assert retries == 3


def test_a_write_the_webhook_refuses_is_retried_not_dropped(tmp_path: Path) -> None:
    with approver_setting(tmp_path, auto_policy(), backoff_base=10.0) as setting:
        setting.add("refused", "client-x")
        setting.store.script("PUT", f"{CSRS}/refused/approval", 403)
        assert setting.controller.process("refused") == "error"
        assert setting.controller.queue.waiting == 1
        assert setting.controller.queue.failures("refused") == 1
        assert setting.decisions("approved") == 0


def test_policy_change_judges_pending_csrs_again(tmp_path: Path) -> None:
    with approver_setting(tmp_path, auto_policy(deny=False)) as setting:
        setting.add("bad", "server-b")
        assert setting.controller.process("bad") == "left_pending"
        (tmp_path / "auto.yaml").write_text(auto_policy(deny=True))
        assert setting.policies.reload()
        assert setting.controller.process("bad") == "denied"


def test_a_broken_policy_directory_keeps_the_last_good_set(tmp_path: Path) -> None:
    with approver_setting(tmp_path, auto_policy()) as setting:
        before = setting.policies.current
        (tmp_path / "auto.yaml").write_text("spec: [")
        assert not setting.policies.reload()
        assert setting.policies.current is before
        assert "auto.yaml" in setting.policies.last_error


def test_denial_message_is_bounded_and_says_how_many_were_left_out() -> None:
    violations = tuple(
        Violation(code="dns.not_allowed", field=f"spec.request.dnsNames[{i}]", message="x" * 50)
        for i in range(500)
    )
    decision = Decision(verdict=Verdict.DENIED, policy="p", violations=violations)
    message = denial_message(decision)
    assert len(message) <= MAX_MESSAGE
    assert message.startswith("csr-webhook approve: policy 'p' denies this request: ")
    assert message.endswith("more)")
    assert "spec.request.dnsNames[0]" in message


def test_the_watch_queues_pending_csrs_and_forgets_finished_ones(tmp_path: Path) -> None:
    with approver_setting(tmp_path, auto_policy()) as setting:
        controller = setting.controller
        controller.changed("a", True)
        controller.changed("b", True)
        controller.changed("a", True)  # an update of a pending CSR
        assert controller.queue.depth == 2
        assert controller.pending_names() == ["a", "b"]
        controller.changed("a", False)  # approved, or deleted
        assert controller.pending_names() == ["b"]


def test_an_unknown_node_is_retried_with_backoff_never_approved_or_denied(tmp_path: Path) -> None:
    """The Node cache has not synced (NO_CLUSTER: every fact unknown): even with auto.deny the
    CSR is neither approved nor denied, and is judged again later."""
    with approver_setting(tmp_path, NODE_POLICY, backoff_base=10.0) as setting:
        setting.store.put(f"{CSRS}/n1", node_csr_object("n1", "worker-1"))
        assert setting.controller.process("n1") == "unknown"
        assert conditions(setting.store, "n1") == []
        assert setting.controller.queue.waiting == 1
        assert setting.decisions("unknown", policy="nodes") == 1
        retries = setting.metrics.registry.get_sample_value("csr_webhook_approver_retries_total")
        assert retries == 1


def test_a_node_bound_csr_is_approved_when_its_node_has_the_address(tmp_path: Path) -> None:
    facts = StaticFacts(nodes={"worker-1": (NodeAddress("Hostname", "worker-1"),)})
    with approver_setting(tmp_path, NODE_POLICY, facts=facts) as setting:
        setting.store.put(f"{CSRS}/n1", node_csr_object("n1", "worker-1"))
        assert setting.controller.process("n1") == "approved"
        assert "rule 'own-node'" in conditions(setting.store, "n1")[0]["message"]


def test_a_node_bound_csr_of_a_missing_node_is_denied(tmp_path: Path) -> None:
    with approver_setting(tmp_path, NODE_POLICY, facts=StaticFacts(nodes={})) as setting:
        setting.store.put(f"{CSRS}/n1", node_csr_object("n1", "worker-1"))
        assert setting.controller.process("n1") == "denied"
        [condition] = conditions(setting.store, "n1")
        assert condition["reason"] == "PolicyViolation"
        assert "node.not_found" in condition["message"]


class SwappableFacts:
    """Cluster facts a test replaces while the controller runs, as Node events change them."""

    def __init__(self, facts: StaticFacts) -> None:
        self.facts = facts

    def node_addresses(self, name: str) -> Any:
        return self.facts.node_addresses(name)

    def nodes_with_address(self, key: str) -> Any:
        return self.facts.nodes_with_address(key)

    def pending_csrs(self, signer_name: str, username: str, *, excluding: str) -> Any:
        return self.facts.pending_csrs(signer_name, username, excluding=excluding)


def test_a_csr_left_pending_for_its_node_is_judged_again_when_a_node_changes(
    tmp_path: Path,
) -> None:
    """Left pending because another Node lists its address: the CSR itself never changes, so
    only a Node's change may bring it back; then it is approved (and a CSR left pending for
    another reason is not queued by a Node change)."""
    own = (NodeAddress("Hostname", "worker-1"),)
    facts = SwappableFacts(StaticFacts(nodes={"worker-1": own, "worker-2": own}))
    policy = NODE_POLICY.replace("deny: true", "deny: false")
    with approver_setting(tmp_path, policy, facts=facts) as setting:
        setting.store.put(f"{CSRS}/n1", node_csr_object("n1", "worker-1"))
        assert setting.controller.process("n1") == "left_pending"
        assert setting.controller.process("n1") == "unchanged"
        setting.store.put(f"{CSRS}/other", csr_object("other", "alice"))
        assert setting.controller.process("other") == "left_pending"
        facts.facts = StaticFacts(nodes={"worker-1": own, "worker-2": ()})
        setting.controller.nodes_changed()
        assert setting.controller.queue.depth == 1
        assert setting.controller.process("n1") == "approved"
        assert conditions(setting.store, "n1")[0]["reason"] == "AutoApproved"
        assert setting.controller.process("other") == "unchanged"
