"""`constraints.node` (docs/policy-reference.md §3.6.1): the CSR is bound to the requesting Node.
The Node named ${node} must exist, and with `sansFromAddresses` every DNS and IP SAN must be
one of its addresses of those types and, under `sharedAddresses: Deny`, of no other Node. Runs
at CREATE, the approval recheck and issuance; an Unknown fact denies (fail closed). The engine
looks the Node and each SAN's claimants up once per review (ctx.asked).

Codes: node.unknown, node.not_found, node.san_not_an_address, node.address_shared.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from webhook import sankinds
from webhook.addresses import comparable_san
from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.facts import ClaimAnswer, NodeIndex, Unknown
from webhook.policy.model import NodeBinding, Rule
from webhook.text import show, show_list

CODES = frozenset(
    {"node.unknown", "node.not_found", "node.san_not_an_address", "node.address_shared"}
)
# The other Nodes a node.address_shared message names; the rest are counted.
SHOWN_CLAIMANTS = 3
# An answer the engine did not ask for is a bug; judged as Unknown so that it still denies.
_NOT_ASKED = Unknown("the Nodes listing this address were not looked up")


def check(ctx: CreateContext) -> Iterable[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    if rule.constraints.node is None:
        return ()  # most rules bind nothing: no generator for them
    return _violations(ctx, rule)


def _violations(ctx: CreateContext, rule: Rule) -> Iterator[Violation]:
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
            where = f"spec.request.{kind.key}[{index}]"
            key = comparable_san(value, ip=kind is sankinds.IP)
            if key is not None and types.get(key, frozenset()) & wanted:
                if not binding.allow_shared:
                    claims = ctx.asked.claims.get(key, _NOT_ASKED)
                    yield from _shared(ctx, kind, value, where, name, claims)
                continue
            yield Violation(
                code="node.san_not_an_address",
                field=where,
                message=f"{kind.label} {show(value)} is not an address of Node {show(name)} "
                f"of type {', '.join(listed)}: {_addresses(node, wanted)}",
            )


def _shared(  # noqa: PLR0917 - one SAN, where it is, whose it is, who else claims it
    ctx: CreateContext,
    kind: sankinds.SanKind,
    value: str,
    where: str,
    name: str,
    claims: ClaimAnswer,
) -> Iterator[Violation]:
    """A node writes its own status.addresses (NodeRestriction lets it), so a Node listing an
    address proves it is that Node's only when no other Node lists it too."""
    rule = ctx.rule
    assert rule is not None
    if isinstance(claims, Unknown):
        yield Violation(
            code="node.unknown",
            field=where,
            message=f"rule {rule.name!r} needs the Nodes that list {kind.label} {show(value)}, "
            f"which cannot be told now: {claims.reason}",
        )
        return
    others = [n for n in claims if n != name]
    if not others:
        return
    shown = ", ".join(show(n) for n in others[:SHOWN_CLAIMANTS])
    more = len(others) - SHOWN_CLAIMANTS
    also = f"{shown} and {more} more" if more > 0 else shown
    yield Violation(
        code="node.address_shared",
        field=where,
        message=f"{kind.label} {show(value)} is an address of Node {show(name)} and also of "
        f"Node {also}: an address two Nodes list proves neither's (sharedAddresses: Deny)",
    )


def _addresses(node: NodeIndex | None, wanted: frozenset[str]) -> str:
    if node is None:
        return "the Node does not exist"
    shown = [a.address for a in node.addresses if a.type in wanted]
    return f"it has {show_list(shown)}" if shown else "it has none"
