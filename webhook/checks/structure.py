"""Always-on structural checks of a parsed CSR (docs/policy-reference.md §6) that do not depend on
the rule.

Yields the parser's `problems` unchanged, then, all with field paths under `spec.request`:
  csr.extension_duplicate, csr.san_multiple, csr.san_kind_not_allowed,
  csr.attribute_not_allowed, csr.control_character, csr.common_name_multiple,
  csr.dns_syntax, csr.dns_ip_literal, csr.dns_punycode, csr.dns_unicode, csr.dns_wildcard,
  csr.uri_syntax, csr.email_unicode
Not here: the extension OID allow-list, unknown critical extensions and whether wildcards are
permitted at all; those depend on the rule.
"""

from __future__ import annotations

import encodings.idna
import ipaddress
import re
from collections.abc import Iterator

from cryptography.x509.oid import AttributeOID, ExtensionOID

from webhook import sankinds
from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.text import show, show_list
from webhook.x509.csr import MS_EXTENSION_REQUEST_OID, ParsedCSR

CODES = frozenset(
    {
        "csr.subject_value_not_string",
        "csr.subject_value_undecodable",
        "csr.subject_string_type",
        "csr.attribute_invalid",
        "csr.extension_unparseable",
        "csr.extension_duplicate",
        "csr.san_multiple",
        "csr.san_kind_not_allowed",
        "csr.attribute_not_allowed",
        "csr.control_character",
        "csr.common_name_multiple",
        "csr.dns_syntax",
        "csr.dns_ip_literal",
        "csr.dns_punycode",
        "csr.dns_unicode",
        "csr.dns_wildcard",
        "csr.uri_syntax",
        "csr.email_unicode",
    }
)

_FIELD = "spec.request"
_SAN_OID = ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string
_ATTRIBUTE_NAMES = {
    AttributeOID.CHALLENGE_PASSWORD.dotted_string: "challengePassword",
    AttributeOID.UNSTRUCTURED_NAME.dotted_string: "unstructuredName",
    MS_EXTENSION_REQUEST_OID: "msExtReq",
}
# C0, DEL and C1: invisible in logs and UIs, and NUL truncates C strings.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
# A URI SAN the signer writes back unchanged. Go's crypto/x509 parses it with net/url and issues
# URL.String(), which re-escapes or drops what is outside this form (a backslash becomes %5C,
# an empty '#' vanishes, an empty authority loses its '//'), and refuses bad escapes or host
# characters. So: RFC 3986 characters, %XX escapes, a DNS-style host when there is an
# authority, userinfo without escapes, a non-empty fragment. The scheme's case may differ: Go
# lowercases it, and URI patterns compare it case-insensitively too.
_U = "-A-Za-z0-9._~"
_PCT = "%[0-9A-Fa-f]{2}"
_PATH = rf"(?:[{_U}!$&'()*+,;=:@/]|{_PCT})*"
_QUERY = rf"(?:[{_U}!$&'()*+,;=:@/?]|{_PCT})*"
_GO_URI = re.compile(
    rf"""[A-Za-z][A-Za-z0-9+.-]*:
    (?: //(?:[{_U}$&+,;=]*(?::[{_U}$&+,;=]*)?@)?
          [A-Za-z0-9_~-]+(?:\.[A-Za-z0-9_~-]+)*(?::[0-9]+)?
          (?:/{_PATH})?
      | (?!//){_PATH}
    )
    (?:\?{_QUERY})?
    (?:\#(?:[{_U}!$&'()*+,;=:@/?]|{_PCT})+)?""",
    re.VERBOSE,
)
_URI_CHARACTERS = re.compile(r"[^A-Za-z0-9._~!$&'()*+,;=:@/?#\[\]%-]")


def _violation(code: str, path: str, message: str) -> Violation:
    return Violation(code=code, field=f"{_FIELD}.{path}", message=message)


def _extensions(csr: ParsedCSR) -> Iterator[Violation]:
    first: dict[str, int] = {}
    for index, extension in enumerate(csr.extensions):
        earlier = first.setdefault(extension.oid, index)
        if earlier == index:
            continue
        path = f"extensions[{index}]"
        if extension.oid == _SAN_OID:
            message = (
                f"a second subjectAltName extension (the first is extensions[{earlier}]); "
                "at most one is allowed"
            )
            yield _violation("csr.san_multiple", path, message)
        else:
            message = (
                f"extension {extension.oid} ({extension.name}) repeats extensions[{earlier}]; "
                "each extension may appear once"
            )
            yield _violation("csr.extension_duplicate", path, message)


def _other_sans(csr: ParsedCSR) -> Iterator[Violation]:
    for index, name in enumerate(csr.other_names):
        message = f"SAN entry {show(name)} is not allowed; only {sankinds.names()} SANs are"
        yield _violation("csr.san_kind_not_allowed", f"otherNames[{index}]", message)


def _attributes(csr: ParsedCSR) -> Iterator[Violation]:
    for oid in csr.attribute_oids:
        name = _ATTRIBUTE_NAMES.get(oid, "unknown")
        message = f"CSR attribute {oid} ({name}) is not allowed; only extensionRequest is"
        yield _violation("csr.attribute_not_allowed", "attributes", message)


def _subject(csr: ParsedCSR) -> Iterator[Violation]:
    for attribute in csr.subject:
        label = attribute.name or attribute.oid
        if _CONTROL.search(attribute.value):
            message = (
                f"subject {label} {show(attribute.value)} contains control characters; "
                "expected printable text"
            )
            yield _violation("csr.control_character", f"subject.{label}", message)
    common_names = [a.value for a in csr.subject if a.name == "commonName"]
    if len(common_names) > 1:
        message = (
            f"{len(common_names)} commonName values {show_list(common_names)}; at most one is "
            "allowed "
            "(Go-based signers read only the last)"
        )
        yield _violation("csr.common_name_multiple", "subject.commonName", message)


def _a_label(name: str) -> str | None:
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        # ipaddress refuses leading zeros, which some resolvers read as octal.
        labels = name.split(".")
        return len(labels) == 4 and all(label.isdigit() for label in labels)
    return True


def _punycode_ok(label: str) -> bool:
    # ToUnicode compares the ACE prefix case-sensitively and passes "XN--" labels through.
    try:
        encodings.idna.ToUnicode(label.lower())
    except UnicodeError:
        return False
    return True


# A DNS name with nothing to report: LDH labels of 1-63 characters (the left-most may be a lone
# `*` before another label), no trailing dot, no label starting "xn--" (checked as punycode),
# not an IP address (the last label is not all digits). ASCII classes only, no IGNORECASE
# (Unicode case folding would let KELVIN SIGN in). Tried only on names of at most 253
# characters, and each label's repeat is bounded and ends before the `.`: linear.
_LDH = r"(?![Xx][Nn]--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_CLEAN_DNS = re.compile(rf"(?:\*\.)?(?:{_LDH}\.)*(?=[A-Za-z0-9-]*[A-Za-z-]){_LDH}")


def _dns_name(name: str) -> Iterator[tuple[str, str]]:
    """(code, message) for each way `name` is not a usable DNS SAN: none for a clean name,
    told by one regular expression; the others are judged label by label."""
    if len(name) <= 253 and _CLEAN_DNS.fullmatch(name):
        return iter(())
    return dns_name_problems(name)


def dns_name_problems(name: str) -> Iterator[tuple[str, str]]:
    """(code, message) for each way `name` is not a usable DNS SAN, label by label."""
    shown = show(name)
    if not name.isascii():
        a_label = _a_label(name)
        hint = f"use its A-label {a_label!r}" if a_label else "use the IDNA A-label (xn--) form"
        yield "csr.dns_unicode", f"DNS name {shown} is not ASCII; {hint}"
        return
    if _is_ip_literal(name):
        yield "csr.dns_ip_literal", f"DNS name {shown} is an IP address; use an IP SAN"
        return
    syntax: list[str] = []
    if len(name) > 253:
        syntax.append(f"{len(name)} characters (at most 253)")
    labels = name.split(".")
    if len(labels) > 1 and not labels[-1]:
        syntax.append("a trailing dot")
        labels.pop()
    for index, label in enumerate(labels):
        if "*" in label:
            if label != "*" or index != 0:
                where = f"label {show(label)}"
                yield (
                    "csr.dns_wildcard",
                    (
                        f"DNS name {shown} has '*' in {where}; a wildcard must be the whole "
                        "left-most label"
                    ),
                )
            elif len(labels) == 1:
                yield "csr.dns_wildcard", f"DNS name {shown} is only a wildcard; expected *.domain"
        elif not label:
            syntax.append("an empty label")
        elif len(label) > 63:
            syntax.append(f"label {show(label, 16)} over 63 characters")
        elif not _LDH_LABEL.fullmatch(label):
            syntax.append(f"label {show(label, 16)} not letters, digits and inner hyphens")
        elif label[:4].lower() == "xn--" and not _punycode_ok(label):
            yield (
                "csr.dns_punycode",
                (f"DNS name {shown} has label {show(label)}, which is not valid punycode"),
            )
    if syntax:
        problems = list(dict.fromkeys(syntax))
        more = f"; … {len(problems) - 4} more" if len(problems) > 4 else ""
        found = "; ".join(problems[:4]) + more
        yield "csr.dns_syntax", f"DNS name {shown}: {found}; expected an LDH host name"


def _uri(uri: str) -> str | None:
    """Why the signer would not issue `uri` as it is, or None."""
    if _GO_URI.fullmatch(uri):
        return None
    bad = _URI_CHARACTERS.search(uri)
    if bad:
        what = f"character {show(bad.group())} at offset {bad.start()}"
    else:
        what = "a form outside scheme://host[:port][/path][?query][#fragment]"
    return (
        f"URI {show(uri)} has {what}; Go's crypto/x509 would refuse it or issue it rewritten. "
        "Expected an absolute URI of RFC 3986 characters with %XX escapes, a DNS host, "
        "no IP literal and no empty fragment"
    )


def _sans(csr: ParsedCSR) -> Iterator[Violation]:
    # IP SANs are rendered from their bytes by the parser: there is no text to misspell.
    for kind in (sankinds.DNS, sankinds.URI, sankinds.EMAIL):
        values: tuple[str, ...] = getattr(csr, kind.attribute)
        for index, value in enumerate(values):
            if kind is sankinds.DNS and len(value) <= 253 and _CLEAN_DNS.fullmatch(value):
                continue  # printable, and nothing for _dns_name to report
            path = f"{kind.key}[{index}]"
            if _CONTROL.search(value):
                message = f"SAN {show(value)} contains control characters; expected printable text"
                yield _violation("csr.control_character", path, message)
            elif kind is sankinds.DNS:
                for code, message in _dns_name(value):
                    yield _violation(code, path, message)
            elif kind is sankinds.URI and (problem := _uri(value)) is not None:
                yield _violation("csr.uri_syntax", path, problem)
            elif kind is sankinds.EMAIL and not value.isascii():
                message = (
                    f"email address {show(value)} is not ASCII; Go's crypto/x509, which the API "
                    "server parses requests with, refuses a non-ASCII rfc822Name"
                )
                yield _violation("csr.email_unicode", path, message)


def _clean_subject(csr: ParsedCSR) -> bool:
    """No subject attribute has a control character and at most one is a commonName: what
    _subject reports nothing for, told without building its generator."""
    common_names = 0
    for attribute in csr.subject:
        if _CONTROL.search(attribute.value):
            return False
        if attribute.name == "commonName":
            common_names += 1
    return common_names <= 1


def check(ctx: CreateContext) -> list[Violation]:
    return _found(ctx.csr)


def violations(csr: ParsedCSR) -> Iterator[Violation]:
    """Every structural violation of `csr`, the parser's problems first (for tests that judge
    a parsed CSR without a policy, too)."""
    return iter(_found(csr))


def _found(csr: ParsedCSR) -> list[Violation]:
    """The parts in their order; each part that cannot report anything is skipped (no
    duplicate among fewer than two extensions, no other names, no attributes, a clean
    subject)."""
    found = list(csr.problems)
    if len(csr.extensions) > 1:
        found.extend(_extensions(csr))
    if csr.other_names:
        found.extend(_other_sans(csr))
    if csr.attribute_oids:
        found.extend(_attributes(csr))
    if not _clean_subject(csr):
        found.extend(_subject(csr))
    if csr.dns_names or csr.uris or csr.email_addresses:
        found.extend(_sans(csr))
    return found
