"""IP patterns (docs/policy-reference.md §7.2): a network compiled to integers, and the integer
an IP value names (IPv4-mapped IPv6 read as IPv4), so a match is one mask test."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from webhook.matching.fields import _SyntaxError


@dataclass(frozen=True, slots=True)
class IpMatcher:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    # The network as integers, compared by mask: (version, network address, netmask).
    version: int = field(init=False, compare=False)
    base: int = field(init=False, compare=False)
    mask: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", self.network.version)
        object.__setattr__(self, "base", int(self.network.network_address))
        object.__setattr__(self, "mask", int(self.network.netmask))

    def match(self, value: str, variables: Mapping[str, str]) -> bool:
        address = address_number(value)
        if address is None:
            return False
        return address[0] == self.version and address[1] & self.mask == self.base


@lru_cache(maxsize=4096)
def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a value names, IPv4-mapped IPv6 as IPv4; None when it is no address."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_MAPPED_PREFIX = 0xFFFF << 32


@lru_cache(maxsize=4096)
def address_number(value: str) -> tuple[int, int] | None:
    """(version, integer) of the address `value` names as _address reads it (IPv4-mapped IPv6
    as IPv4), None when it is no address. A value in the form the C library writes back
    unchanged (every IP SAN: the parser renders them from their bytes) is read by
    inet_pton; anything else, by ipaddress."""
    family = socket.AF_INET6 if ":" in value else socket.AF_INET
    try:
        packed = socket.inet_pton(family, value)
        canonical = socket.inet_ntop(family, packed) == value
    except (OSError, ValueError):
        canonical = False
    if not canonical:
        address = _address(value)
        return None if address is None else (address.version, int(address))
    number = int.from_bytes(packed)
    if family == socket.AF_INET:
        return 4, number
    if number >> 32 == 0xFFFF:
        return 4, number - _MAPPED_PREFIX
    return 6, number


def compile_ip(text: str) -> IpMatcher:
    if "${" in text:
        raise _SyntaxError("templates are not allowed in IP patterns")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise _SyntaxError("not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)") from None
        raise _SyntaxError(f"host bits set; the network is {loose}") from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return IpMatcher(ipaddress.IPv4Network((mapped, network.prefixlen - 96)))
    return IpMatcher(network)
