"""What a pattern admits beyond what it seems to: the analysis behind the breadth lints.

A SAN pattern may admit every value of its kind (`**`, `0.0.0.0/0`, `*@*`); a `**` inside a
URI path admits every prefix before the segments the author meant to bind; a
signer pattern with a wildcard in its domain claims other organisations' signers, and `**` in
a signer pattern is just two `*`. Each function takes one compiled pattern and explains what
it admits and what to write instead, or nothing when it is as narrow as it looks. Pure;
imports matching and text only.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from webhook.matching.patterns import Pattern, PatternKind
from webhook.text import show

SHOWN = 256  # a pattern and what to write instead are shown whole up to this length

# The in-tree signers (pkg/apis/certificates/types.go), which the cluster itself trusts.
BUILTIN_SIGNERS = (
    "kubernetes.io/kube-apiserver-client",
    "kubernetes.io/kube-apiserver-client-kubelet",
    "kubernetes.io/kube-apiserver-client-pod",
    "kubernetes.io/kubelet-serving",
    "kubernetes.io/legacy-unknown",
)


def _all_wildcards(segment: str) -> bool:
    return segment.replace("*", "") == ""


def admits_everything(pattern: Pattern) -> str | None:
    """What the pattern admits when it admits every value of its kind, else None."""
    text = pattern.text
    if pattern.kind is PatternKind.DNS and text in ("*", "**"):
        return "every single-label DNS name" if text == "*" else "every DNS name"
    if pattern.kind is PatternKind.EMAIL:
        local, _, domain = text.partition("@")
        return "every email address" if local == "*" and domain in ("*", "**") else None
    if pattern.kind is PatternKind.IP:
        network = ipaddress.ip_network(text)
        prefix = network.prefixlen
        if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
            prefix, network = prefix - 96, ipaddress.IPv4Network("0.0.0.0/0")
        return f"every IPv{network.version} address" if prefix == 0 else None
    if pattern.kind is PatternKind.URI:
        parts = urlsplit(text)
        segments = parts.path.split("/")[1:]
        wild = parts.netloc in ("*", "**") and not parts.query and not parts.fragment
        if wild and segments and all(s in ("*", "**") for s in segments):
            return f"every {parts.scheme} URI"
    return None


def uri_double_star_inside(
    pattern: Pattern,
    *,
    obtains: str = "a requester may also obtain",
    own: str = "the requester's own",
    namespace: str = "${sa.namespace}",
) -> str | None:
    """A `**` path segment followed by a segment that is not all wildcards (a literal, or a
    template the author meant to bind): `spiffe://td/**/sa/${sa.name}` gives a service
    account the identity of its namesake in every namespace. A trailing `**` is plain
    breadth under a fixed prefix and is not reported. The keywords word the message for
    podCertificates.issued, whose patterns the signer fills and whose namespace is a pod's."""
    if pattern.kind is not PatternKind.URI:
        return None
    parts = urlsplit(pattern.text)
    segments = parts.path.split("/")
    last_bound = max((i for i, s in enumerate(segments) if not _all_wildcards(s)), default=0)
    at = next((i for i, s in enumerate(segments[:last_bound]) if s == "**"), None)
    if at is None:
        return None

    def with_segments(middle: str) -> str:
        return parts._replace(path="/".join([*segments[:at], middle, *segments[at + 1 :]])).geturl()

    if parts.scheme.lower() == "spiffe" and segments[at + 1 : at + 2] == ["sa"]:
        admitted = with_segments("ns/another-namespace")
        what = "the identity of its namesake in every other namespace"
        instead = f" ({show(with_segments(f'ns/{namespace}'), SHOWN)})"
    else:
        admitted = with_segments("any/other/path")
        what = "every other URI that ends the same way under any prefix"
        instead = f" (e.g. {namespace})"
    return (
        f"'**' inside the path of {show(pattern.text, SHOWN)} stands for any one or more path "
        f"segments, so {obtains} {show(admitted, SHOWN)}: {what}; spell each "
        "segment out and bind "
        f"{own} with templates{instead}"
    )


def _domain_is_wild(domain: str) -> bool:
    """A wildcard among the last two labels reaches beyond one organisation's domain
    (`*.example.com` stays inside example.com; `*.io`, `example.*` and `*` do not)."""
    labels = domain.split(".")
    return len(labels) < 2 or any("*" in label for label in labels[-2:])


def broad_signer(pattern: Pattern) -> list[str]:
    """Why a signerNames pattern claims more than meant: a wildcard in the domain, `**`. The
    policy of such a pattern governs every matching signer no other policy claims, which would
    otherwise fall to --unmatched-signers. A pattern without exactly one '/' is an error of
    its own (it matches no signer) and is not reported here."""
    text = pattern.text
    if pattern.kind is not PatternKind.SIGNER or pattern.is_literal or text.count("/") != 1:
        return []
    found = []
    domain = text.partition("/")[0]
    if _domain_is_wild(domain):
        builtin = next((b for b in BUILTIN_SIGNERS if pattern.matches(b)), None)
        also = f", the cluster's own {builtin!r} included" if builtin else ""
        found.append(
            f"signer pattern {show(text, SHOWN)} has a wildcard in the domain "
            f"{show(domain, SHOWN)}, so this policy "
            f"governs signers of domains that are not yours{also}: each one no other policy "
            "claims gets this policy's rules instead of the --unmatched-signers setting; name "
            "your own domain (e.g. 'example.com/*' or '*.example.com/mtls')"
        )
    if "**" in text:
        found.append(
            f"'**' in signer pattern {show(text, SHOWN)} is not a multi-segment wildcard: a "
            "signer name is "
            "exactly 'domain/name', and there '**' is just two '*' (two or more characters, "
            "never '/'), so the pattern claims every matching signer, ones added later "
            f"included; write {show(text.replace('**', '*'), SHOWN)} if that is meant, or list "
            "the signers"
        )
    return found
