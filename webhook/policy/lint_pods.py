"""Lint warnings for `spec.podCertificates`: a PodCertificateRequest policy that is legal but
leaves a door open (no CA, no issuers) or cannot do what it seems to say (no SAN to issue, a
cap outside what the API server allows). Pure functions of the built policy and its document,
as webhook.policy.lint's; never change a decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from webhook.matching.variables import POD_VARIABLES
from webhook.policy.breadth import admits_everything, uri_double_star_inside
from webhook.policy.model import SignerPolicy
from webhook.policy.schema import POD_MAX_EXPIRATION, POD_MIN_EXPIRATION
from webhook.policy.source import Document, PathKey, Problem, warning
from webhook.sankinds import SAN_KINDS

_warn = warning
_PODS: PathKey = ("spec", "podCertificates")
# The pod variables a creator writes into the spec (${signerName} selects the policy itself).
_CLAIMED = POD_VARIABLES - {"signerName", "node"}


def lint_pod_chain_trust_unchecked(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """podCertificates without caBundle: any chain that names the right key and SANs is stored,
    whoever signed it."""
    pods = policy.pod_certificates
    if (
        pods is not None
        and not pods.ca_certificates_der
        and not _given(document, "caBundle", "caBundleFile")
    ):
        yield _warn(
            document,
            _PODS,
            "podCertificates has no caBundle (or caBundleFile): a chain from any CA is accepted "
            "at /status; give the CA the signer issues from",
        )


def lint_pod_any_issuer(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    pods = policy.pod_certificates
    if pods is not None and pods.issuers is None:
        yield _warn(
            document,
            _PODS,
            "podCertificates has no issuers: anyone RBAC lets `sign` for the signer may write "
            "any chain the issued patterns permit; name the signer's service account",
        )


def lint_pod_issued_without_sans(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    pods = policy.pod_certificates
    if pods is None:
        return
    if not any(getattr(pods.issued, kind.attribute) for kind in SAN_KINDS) and not any(
        _written(document, "issued", kind.key) for kind in SAN_KINDS
    ):
        keys = ", ".join(kind.key for kind in SAN_KINDS)
        yield _warn(
            document,
            (*_PODS, "issued") if _given(document, "issued") else _PODS,
            f"podCertificates.issued lists no SAN pattern ({keys}): every certificate that "
            "names its pod is refused at /status (pod.san_not_allowed)",
        )


def lint_pod_expiration_bounds(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """maxExpirationSeconds outside what the API server lets spec.maxExpirationSeconds be,
    and an issued lifetime.max that the cap makes unreachable."""
    pods = policy.pod_certificates
    if pods is None:
        return
    cap = pods.max_expiration_seconds
    path = (*_PODS, "maxExpirationSeconds")
    if cap is not None and cap > POD_MAX_EXPIRATION:
        yield _warn(
            document,
            path,
            f"maxExpirationSeconds {cap}s is above {POD_MAX_EXPIRATION}s (91 days), which the API "
            "server already refuses in spec.maxExpirationSeconds: the cap limits nothing",
        )
    elif cap is not None and cap < POD_MIN_EXPIRATION:
        yield _warn(
            document,
            path,
            f"maxExpirationSeconds {cap}s is below {POD_MIN_EXPIRATION}s (1h), the least the API "
            "server accepts in spec.maxExpirationSeconds: every PodCertificateRequest is refused "
            "(lifetime.too_long)",
        )
    high = pods.issued.lifetime.max
    if cap is not None and high is not None and high > cap:
        yield _warn(
            document,
            (*_PODS, "issued", "lifetime", "max"),
            f"issued.lifetime.max {high}s is above maxExpirationSeconds {cap}s: no request may "
            "ask for that long, so the bound is never reached",
        )


def lint_pod_claimed_templates(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """Requesters that admit creators other than nodes, with ${pod.*} in `issued` (its SANs or
    its subject): only NodeRestriction checks spec.podName, podUID and serviceAccountName
    against a real pod, and only for a node, so for anyone else the template names whatever
    the creator wrote."""
    pods = policy.pod_certificates
    if pods is None or pods.nodes_only:
        return
    lists = [(kind.key, getattr(pods.issued, kind.attribute)) for kind in SAN_KINDS]
    lists += [(f"subject.{name}", patterns) for name, patterns in pods.issued.subject.items()]
    for key, patterns in lists:
        for index, pattern in enumerate(patterns):
            claimed = sorted(pattern.variables & _CLAIMED)
            if claimed:
                names = ", ".join(f"${{{name}}}" for name in claimed)
                yield _warn(
                    document,
                    (*_PODS, "requesters") if _given(document, "requesters") else _PODS,
                    "requesters admit creators that are not nodes, and for them the API server "
                    f"checks no pod field: issued.{key}[{index}] {pattern.text!r} takes "
                    f"{names} from what the creator wrote (it may name any pod, service account "
                    'or UID that `pods` allows); admit only nodes (users: ["system:node:*"]) '
                    "or leave ${pod.*} out of issued",
                )
                return


def lint_pod_uri_double_star_inside(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """`**` before a bound segment of an issued URI (breadth.uri_double_star_inside)."""
    pods = policy.pod_certificates
    for index, pattern in enumerate(pods.issued.uris if pods is not None else ()):
        message = uri_double_star_inside(
            pattern,
            obtains="the signer may also issue",
            own="the pod's own",
            namespace="${pod.namespace}",
        )
        if message is not None:
            yield _warn(document, (*_PODS, "issued", "uris", index), message)


def lint_pod_issued_breadth(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """An issued SAN pattern admitting every value of its kind, and the usage `any`."""
    pods = policy.pod_certificates
    if pods is None:
        return
    for kind in SAN_KINDS:
        for index, pattern in enumerate(getattr(pods.issued, kind.attribute)):
            what = admits_everything(pattern)
            if what is not None:
                yield _warn(
                    document,
                    (*_PODS, "issued", kind.key, index),
                    f"{pattern.text!r} admits {what}; the signer may write any such SAN into a "
                    "pod's certificate: list the names meant",
                )
    usages = _raw_list(document, "issued", "usages")
    if "any" in pods.issued.usages:
        where = usages.index("any") if "any" in usages else None
        yield _warn(
            document,
            (*_PODS, "issued", "usages", *(() if where is None else (where,))),
            "usage 'any' (anyExtendedKeyUsage) makes a certificate valid for every purpose, "
            "and lets a leaf without extended key usage through; list the usages the workload "
            "needs",
        )


def _raw_list(document: Document, block: str, key: str) -> list[object]:
    spec = document.value.get("spec") if isinstance(document.value, dict) else None
    pods = spec.get("podCertificates") if isinstance(spec, dict) else None
    inner = pods.get(block) if isinstance(pods, dict) else None
    value = inner.get(key) if isinstance(inner, dict) else None
    return value if isinstance(value, list) else []


def _written(document: Document, block: str, key: str) -> bool:
    """The author listed something at podCertificates.<block>.<key>, refused or not (a refused
    pattern is its own error, not also a missing one)."""
    spec = document.value.get("spec") if isinstance(document.value, dict) else None
    pods = spec.get("podCertificates") if isinstance(spec, dict) else None
    inner = pods.get(block) if isinstance(pods, dict) else None
    return isinstance(inner, dict) and bool(inner.get(key))


def _given(document: Document, *keys: str) -> bool:
    spec = document.value.get("spec") if isinstance(document.value, dict) else None
    pods = spec.get("podCertificates") if isinstance(spec, dict) else None
    return isinstance(pods, dict) and any(key in pods for key in keys)


POD_LINTS: tuple[Callable[[SignerPolicy, Document], Iterator[Problem]], ...] = (
    lint_pod_chain_trust_unchecked,
    lint_pod_any_issuer,
    lint_pod_issued_without_sans,
    lint_pod_expiration_bounds,
    lint_pod_claimed_templates,
    lint_pod_uri_double_star_inside,
    lint_pod_issued_breadth,
)
