"""Cluster facts for `csr-webhook eval`: Nodes read from manifests (`--nodes FILE`, the output of
`kubectl get nodes -o yaml`: a List, or single Nodes) and pending CSRs counted in the CSRs being
evaluated (`--count-pending`). Untrusted input, read like eval's own (size cap, alias budget);
every problem is an InputError naming file, line, document and field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from webhook.errors import InputError
from webhook.facts import NodeAddress, StaticFacts
from webhook.policy.source import Document
from webhook.resource import CSRObject
from webhook.text import show

NODE_API_VERSION = "v1"
_LIST_KINDS = ("List", "NodeList")
# A CSR with one of these conditions is decided: no longer pending (webhook.facts).
_DECIDED = frozenset({"Approved", "Denied", "Failed"})
UNCOUNTED = "eval counts no pending CSRs without --count-pending"
NO_NODES = "eval knows no Nodes without --nodes"


def _where(document: Document, path: tuple[str | int, ...], json_input: bool) -> str:
    line = "" if json_input else f":{document.line_of(path)}"
    return f"{document.file}{line}: document {document.index + 1}"


def _node(
    raw: object, document: Document, path: tuple[str | int, ...], json_input: bool
) -> tuple[str, tuple[NodeAddress, ...]]:
    where = _where(document, path, json_input)
    label = f"{path[0]}[{path[1]}]" if path else ""
    prefix = f"{label}." if label else ""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: {label or 'the document'} must be an object")
    if raw.get("kind", "Node") != "Node" or raw.get("apiVersion", "v1") != NODE_API_VERSION:
        kind, api = raw.get("kind"), raw.get("apiVersion")
        what = label or "the document"
        raise InputError(f"{where}: {what} is a {kind!r} of {api!r}, not a v1 Node")
    metadata = raw.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: {prefix}metadata.name must be a non-empty string")
    status = raw.get("status", {})
    addresses = status.get("addresses", []) if isinstance(status, dict) else None
    if not isinstance(addresses, list):
        raise InputError(f"{where}: {prefix}status.addresses of Node {show(name)} must be a list")
    out = []
    for index, entry in enumerate(addresses):
        at = _where(document, (*path, "status", "addresses", index), json_input)
        field = f"{prefix}status.addresses[{index}]"
        if not isinstance(entry, dict):
            raise InputError(f"{at}: {field} must be an object with type and address")
        kind, value = entry.get("type"), entry.get("address")
        if not isinstance(kind, str) or not isinstance(value, str):
            raise InputError(f"{at}: {field}: type and address must be strings")
        out.append(NodeAddress(kind, value))
    return name, tuple(out)


def _nodes_of(
    document: Document, json_input: bool
) -> Iterator[tuple[str, tuple[NodeAddress, ...]]]:
    value = document.value
    if value is None:
        return
    if isinstance(value, dict) and value.get("kind") in _LIST_KINDS:
        items = value.get("items")
        if not isinstance(items, list):
            raise InputError(f"{_where(document, (), json_input)}: items must be a list")
        for index in range(len(items)):
            yield _node(items[index], document, ("items", index), json_input)
        return
    yield _node(value, document, (), json_input)


def read_nodes(
    documents: Sequence[Document], json_input: bool
) -> Mapping[str, tuple[NodeAddress, ...]]:
    """Every Node of the documents by name; a name twice is an error (two clusters mixed?)."""
    nodes: dict[str, tuple[NodeAddress, ...]] = {}
    for document in documents:
        for name, addresses in _nodes_of(document, json_input):
            if name in nodes:
                where = _where(document, (), json_input)
                raise InputError(f"{where}: Node {show(name)} is given twice")
            nodes[name] = addresses
    return nodes


def pending_of(objects: Sequence[CSRObject]) -> dict[tuple[str, str], tuple[str, ...]]:
    """The pending CSRs among `objects` (no Approved, Denied or Failed condition), by signer
    and requester, as the cluster's watch counts them."""
    out: dict[tuple[str, str], list[str]] = {}
    for obj in objects:
        if not any(c.type in _DECIDED for c in obj.conditions):
            out.setdefault((obj.signer_name, obj.username), []).append(obj.name)
    return {key: tuple(names) for key, names in out.items()}


def eval_facts(
    nodes: Mapping[str, tuple[NodeAddress, ...]] | None,
    objects: Sequence[CSRObject] | None,
) -> StaticFacts:
    """What `eval` knows: Nodes when given, pending counts when counted; Unknown otherwise."""
    reasons = [
        r for r, absent in ((NO_NODES, nodes is None), (UNCOUNTED, objects is None)) if absent
    ]
    return StaticFacts(
        nodes=nodes,
        pending=pending_of(objects) if objects is not None else None,
        reason="; ".join(reasons) or "known",
    )
