"""`approval.auto` in a SignerPolicy: built into the model, its mistakes reported with file,
line and path."""

from __future__ import annotations

import textwrap
from pathlib import Path

from webhook.policy.loader import load_policies
from webhook.policy.model import AutoApproval

POLICY = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: p}
spec:
  signerNames: ["example.com/signer"]
  rules:
    - name: r
      allowed: {usages: ["client auth"]}
  approval:
"""


def _load(tmp_path: Path, approval: str) -> tuple[list[str], AutoApproval | None]:
    (tmp_path / "p.yaml").write_text(POLICY + textwrap.indent(approval, "    "))
    result = load_policies([tmp_path])
    problems = [str(p) for p in result.problems]
    if result.policy_set is None:
        return problems, None
    [policy] = result.policy_set.policies
    return problems, policy.approval.auto


def test_auto_is_absent_unless_set(tmp_path: Path) -> None:
    assert _load(tmp_path, "recheck: true\n") == ([], None)


def test_auto_builds_with_false_defaults(tmp_path: Path) -> None:
    assert _load(tmp_path, "auto: {approve: true}\n") == (
        [],
        AutoApproval(approve=True, deny=False),
    )
    assert _load(tmp_path, "auto: {deny: true}\n") == ([], AutoApproval(approve=False, deny=True))


def test_auto_that_does_nothing_is_an_error(tmp_path: Path) -> None:
    problems, _ = _load(tmp_path, "auto: {approve: false}\n")
    assert problems == [
        f"{tmp_path / 'p.yaml'}:10: spec.approval.auto: "
        "auto sets neither approve nor deny: remove it, or set one"
    ]


def test_auto_with_an_unknown_key_or_a_wrong_type_is_reported(tmp_path: Path) -> None:
    problems, auto = _load(tmp_path, "auto: {approve: yes-please, reject: true}\n")
    assert auto is None
    assert any("spec.approval.auto.approve" in p for p in problems), problems
    assert any("reject" in p for p in problems), problems
