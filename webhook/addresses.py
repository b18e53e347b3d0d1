"""Comparable forms of DNS names and IP addresses, for telling whether a SAN is one of a Node's
addresses (constraints.node). Pure leaf functions with no project imports, like webhook.text:
the cluster facts index a Node's addresses with them and the node check looks its SANs up.
"""

from __future__ import annotations

import ipaddress


def comparable_name(value: str) -> str:
    """A DNS name as compared with a Node's addresses: lower case, one trailing dot dropped."""
    return "dns:" + value.lower().removesuffix(".")


def comparable_ip(value: str) -> str | None:
    """An IP address in canonical text, an IPv4-mapped IPv6 address as its IPv4 address; None
    when `value` is no IP address."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"ip:{address.ipv4_mapped}"
    return f"ip:{address}"


def comparable(value: str) -> str:
    """An address value as an IP when it is one, else as a DNS name (whatever its type says)."""
    ip = comparable_ip(value)
    return ip if ip is not None else comparable_name(value)


def comparable_san(value: str, *, ip: bool) -> str | None:
    """A DNS SAN (`ip` False) or IP SAN as looked up among Nodes' addresses: a DNS SAN is a
    name even when it reads as an IP address; None for an IP SAN that is no IP address."""
    return comparable_ip(value) if ip else comparable_name(value)
