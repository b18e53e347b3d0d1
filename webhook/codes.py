"""Every violation code the webhook emits, in one table, for tools that take codes from people.

`csr-webhook test` refuses a suite that expects a code outside it and suggests the nearest one.
Pure data; tests/test_codes.py keeps it equal to the codes the checks actually emit.
"""

from __future__ import annotations

import difflib
import functools

KNOWN_CODES: frozenset[str] = frozenset(
    {
        "csr.encoding",
        "csr.too_large",
        "csr.pem_missing",
        "csr.pem_multiple",
        "csr.pem_type",
        "csr.pem_headers",
        "csr.der_invalid",
        "csr.public_key_unsupported",
        "csr.signature_unsupported",
        "csr.signature_invalid",
        "csr.subject_value_not_string",
        "csr.subject_value_undecodable",
        "csr.subject_string_type",
        "csr.attribute_invalid",
        "csr.attribute_not_allowed",
        "csr.extension_unparseable",
        "csr.extension_duplicate",
        "csr.san_multiple",
        "csr.san_kind_not_allowed",
        "csr.control_character",
        "csr.common_name_multiple",
        "csr.dns_syntax",
        "csr.dns_ip_literal",
        "csr.dns_punycode",
        "csr.dns_unicode",
        "csr.dns_wildcard",
        "csr.uri_syntax",
        "csr.email_unicode",
        "csr.san_required",
        "subject.not_allowed",
        "subject.required",
        "subject.too_many",
        "subject.unknown_attribute",
        "dns.not_allowed",
        "dns.required",
        "dns.too_many",
        "dns.wildcard_not_allowed",
        "ip.not_allowed",
        "ip.required",
        "ip.too_many",
        "uri.not_allowed",
        "uri.required",
        "uri.too_many",
        "email.not_allowed",
        "email.required",
        "email.too_many",
        "usages.not_allowed",
        "usages.required",
        "usages.extension_mismatch",
        "extensions.not_allowed",
        "extensions.unknown_critical",
        "key.type_not_allowed",
        "key.rsa_size",
        "key.rsa_exponent",
        "key.curve_not_allowed",
        "signature.weak",
        "signature.not_allowed",
        "lifetime.missing",
        "lifetime.too_long",
        "lifetime.too_short",
        "ca.not_allowed",
        "requester.not_permitted",
        "deny.dns",
        "deny.ip",
        "deny.uri",
        "deny.email",
        "deny.subject",
        "signer.unmatched",
        "transition.condition_status",
        "transition.condition_duplicate",
        "transition.approved_and_denied",
        "transition.condition_removed",
        "transition.condition_modified",
        "transition.approval_subresource_required",
        "transition.status_subresource_required",
        "transition.certificate_unapproved",
        "transition.certificate_modified",
        "transition.certificate_malformed",
        "transition.denied_after_issue",
        "transition.spec_changed",
        "transition.main_resource_modified",
        "approval.not_approver",
        "approval.self_approval",
        "approval.recheck_failed",
        "issuance.not_issuer",
        "issuance.requester_not_permitted",
        "issuance.public_key_mismatch",
        "issuance.subject_not_requested",
        "issuance.san_not_requested",
        "issuance.lifetime_too_long",
        "issuance.ca_not_allowed",
        "issuance.usage_not_requested",
        "issuance.untrusted_issuer",
        "issuance.request_unparseable",
        "issuance.certificate_unparseable",
        "issuance.extension_unparseable",
    }
)
FAMILIES: frozenset[str] = frozenset(code.split(".")[0] + "." for code in KNOWN_CODES)
_BY_FAMILY: dict[str, frozenset[str]] = {
    family: frozenset(c for c in KNOWN_CODES if c.startswith(family)) for family in FAMILIES
}


def is_known(code: str) -> bool:
    """A code the webhook emits, or a family (`dns.`) some emitted code belongs to."""
    if code.endswith("."):
        return any(known.startswith(code) for known in KNOWN_CODES)
    return code in KNOWN_CODES


@functools.lru_cache(maxsize=1024)
def nearest(code: str) -> str | None:
    """The known code (or family, for a family) most like `code`, if any is close. Looks within
    the code's family when that family exists (a typo is rarely in the family name), which
    keeps a suite full of typos cheap to report."""
    if code.endswith("."):
        candidates = FAMILIES
    else:
        family = code.split(".", maxsplit=1)[0] + "."
        candidates = _BY_FAMILY.get(family, KNOWN_CODES)
    found = difflib.get_close_matches(code, sorted(candidates), n=1, cutoff=0.6)
    if not found and candidates is not KNOWN_CODES and not code.endswith("."):
        found = difflib.get_close_matches(code, sorted(KNOWN_CODES), n=1, cutoff=0.6)
    return found[0] if found else None
