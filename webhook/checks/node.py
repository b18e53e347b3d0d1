"""`constraints.node` (docs/policy-reference.md §3.6.1): the CSR is bound to the requesting Node.
The Node named ${node} must exist, and with `sansFromAddresses` every DNS and IP SAN must be
one of its addresses of those types. Runs at CREATE, the approval recheck and issuance; an
Unknown fact denies (fail closed). The engine looks the Node up once per review (ctx.asked).

Codes: node.unknown, node.not_found, node.san_not_an_address.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook import sankinds
from webhook.addresses import comparable_ip, comparable_name
from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.facts import NodeIndex, Unknown
from webhook.policy.model import NodeBinding
from webhook.text import show, show_list

CODES = frozenset({"node.unknown", "node.not_found", "node.san_not_an_address"})


def check(ctx: CreateContext) -> Iterator[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    binding = rule.constraints.node
    if binding is None:
        return
    name = ctx.variables.get("node")
    if name is None:
        yield Violation(
            code="node.not_found",
            field="spec.username",
            message=f"rule {rule.name!r} binds the CSR to the requesting Node, and requester "
            f"{show(ctx.requester.username)} is no node (a node is system:node:<name> in group "
            "system:nodes)",
        )
        return
    found = ctx.asked.node
    if isinstance(found, Unknown):
        yield Violation(
            code="node.unknown",
            field="spec.username",
            message=f"rule {rule.name!r} needs Node {show(name)}, which cannot be told now: "
            f"{found.reason}",
        )
        return
    if found is None and binding.must_exist:
        yield Violation(
            code="node.not_found",
            field="spec.username",
            message=f"rule {rule.name!r} requires Node {show(name)} to exist; there is none",
        )
    if binding.sans_from_addresses:
        yield from _sans(ctx, binding, name, found)


def _sans(
    ctx: CreateContext, binding: NodeBinding, name: str, node: NodeIndex | None
) -> Iterator[Violation]:
    """Every DNS and IP SAN against the addresses of the listed types; URI and email SANs are
    no Node's addresses and stay the allow-list's."""
    wanted = binding.sans_from_addresses
    types = node.types if node is not None else {}
    listed = sorted(wanted)
    for kind in (sankinds.DNS, sankinds.IP):
        values: tuple[str, ...] = getattr(ctx.csr, kind.attribute)
        for index, value in enumerate(values):
            key = _key(kind, value)
            if key is not None and types.get(key, frozenset()) & wanted:
                continue
            yield Violation(
                code="node.san_not_an_address",
                field=f"spec.request.{kind.key}[{index}]",
                message=f"{kind.label} {show(value)} is not an address of Node {show(name)} "
                f"of type {', '.join(listed)}: {_addresses(node, wanted)}",
            )


def _key(kind: sankinds.SanKind, value: str) -> str | None:
    if kind is sankinds.IP:
        return comparable_ip(value)
    return comparable_name(value)


def _addresses(node: NodeIndex | None, wanted: frozenset[str]) -> str:
    if node is None:
        return "the Node does not exist"
    shown = [a.address for a in node.addresses if a.type in wanted]
    return f"it has {show_list(shown)}" if shown else "it has none"
