"""Template variables (docs/policy-reference.md §7): which exist, where each may be used, and
the values a requester defines. Owns the reading of Kubernetes user names (node, service
account); knows no pattern syntax."""

from __future__ import annotations

from dataclasses import dataclass

# The requester's (CSR rules) and the pod's (`podCertificates.issued`); the policy builder
# refuses each outside its place (webhook/policy/build.py).
REQUESTER_VARIABLES: frozenset[str] = frozenset(
    {"username", "node", "sa.namespace", "sa.name", "signerName"}
)
POD_VARIABLES: frozenset[str] = frozenset(
    {"pod.namespace", "pod.name", "pod.uid", "pod.serviceAccountName", "node", "signerName"}
)
TEMPLATE_VARIABLES: frozenset[str] = REQUESTER_VARIABLES | POD_VARIABLES

_NODE_PREFIX = "system:node:"
_NODES_GROUP = "system:nodes"
_SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class Requester:
    username: str
    groups: tuple[str, ...] = ()


# No name the API server authenticates comes near this; a longer value defines no variable,
# so a pattern using it matches nothing, and a hostile review cannot make every SAN match
# cost the length of a megabyte username.
MAX_VARIABLE_CHARS = 1024


def template_variables(requester: Requester, signer_name: str) -> dict[str, str]:
    """Only the variables defined for this requester; patterns using others match nothing."""
    username = requester.username
    out = {"username": username, "signerName": signer_name}
    node = username.removeprefix(_NODE_PREFIX)
    if username.startswith(_NODE_PREFIX) and node and _NODES_GROUP in requester.groups:
        out["node"] = node
    account = split_service_account(username)
    if account is not None:
        out["sa.namespace"], out["sa.name"] = account
    # Every other value is part of the username.
    if len(username) <= MAX_VARIABLE_CHARS and len(signer_name) <= MAX_VARIABLE_CHARS:
        return out
    return {name: value for name, value in out.items() if len(value) <= MAX_VARIABLE_CHARS}


def split_service_account(username: str) -> tuple[str, str] | None:
    # Mirrors k8s.io/apiserver/pkg/authentication/serviceaccount.SplitUsername: exactly two parts.
    if not username.startswith(_SA_PREFIX):
        return None
    namespace, sep, name = username.removeprefix(_SA_PREFIX).partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name
