"""ParsedCSR and its parts: what parse_csr says about a CSR, as immutable values.

Values only, shared by the exhaustive reader (webhook.x509.csr) and its fast path
(webhook.x509.common_csr), which builds them with `builder` (cheaper than the frozen
dataclasses' __init__); no parsing here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from webhook.decision import Violation


@dataclass(frozen=True, slots=True, kw_only=True)
class SubjectAttribute:
    oid: str
    name: str | None
    value: str
    rdn_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionInfo:
    oid: str
    critical: bool
    name: str
    value: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicKeyInfo:
    type: str
    bits: int | None = None
    exponent: int | None = None
    curve: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedCSR:
    """What a CSR says. Bytes fields stay out of repr so a logged value never carries them."""

    der: bytes = field(repr=False)
    public_key_der: bytes = field(repr=False)
    key: PublicKeyInfo
    signature_algorithm: str
    signature_hash: str | None
    subject: tuple[SubjectAttribute, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    email_addresses: tuple[str, ...] = ()
    other_names: tuple[str, ...] = ()
    extensions: tuple[ExtensionInfo, ...] = ()
    key_usage: frozenset[str] | None = None
    extended_key_usage: tuple[str, ...] | None = None
    basic_constraints_ca: bool | None = None
    attribute_oids: tuple[str, ...] = ()
    problems: tuple[Violation, ...] = ()

    def subject_values(self, name: str) -> tuple[str, ...]:
        """Every value of the subject attribute `name` (a policy key), in order."""
        return tuple(a.value for a in self.subject if a.name == name)


_T = TypeVar("_T")


def builder(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of the frozen slotted dataclass `cls` taking every field positionally, in
    declaration order (no defaults): the same object as cls(...), without the generated
    __init__'s object.__setattr__ call per field (ParsedCSR's costs ~27k instructions)."""
    setters = tuple(getattr(cls, f.name).__set__ for f in fields(cls))  # type: ignore[arg-type]
    new = object.__new__

    def build(*values: Any) -> _T:
        made: _T = new(cls)
        for setter, value in zip(setters, values, strict=True):
            setter(made, value)
        return made

    return build
