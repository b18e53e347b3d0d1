"""Lint warnings for `spec.podCertificates` (`check`): each fires on the case it names, with
file:line: path, and stays quiet on a careful policy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.certs import self_signed_ca_pem
from webhook.policy.loader import load_policies

HEADER = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: mesh}
spec:
  signerNames: ["example.com/mesh"]
  podCertificates:
"""
CA = textwrap.indent(self_signed_ca_pem().decode(), "      ")
# Line 7 on: nothing to warn about.
CAREFUL = {
    "issuers": '    issuers: {serviceAccounts: ["mesh-system/signer"]}\n',
    "issued": '    issued: {uris: ["spiffe://cluster.local/ns/${pod.namespace}/sa/x"]}\n',
    "maxExpirationSeconds": "    maxExpirationSeconds: 24h\n",
    "caBundle": "    caBundle: |\n" + CA,
}


def warnings_of(tmp_path: Path, **fields: str | None) -> list[str]:
    """The warnings of the careful policy with `fields` replaced (None: left out)."""
    chosen = {**CAREFUL, **fields}
    file = tmp_path / "p.yaml"
    file.write_text(HEADER + "".join(text for text in chosen.values() if text is not None))
    result = load_policies([file], lint=True)
    assert not result.errors, [str(p) for p in result.errors]
    return [str(p).removeprefix(f"{file}:") for p in result.problems]


def test_careful_pod_policy_raises_no_warning(tmp_path: Path) -> None:
    assert warnings_of(tmp_path) == []


def test_warns_without_ca_bundle(tmp_path: Path) -> None:
    assert warnings_of(tmp_path, caBundle=None) == [
        "6: spec.podCertificates: warning: podCertificates has no caBundle (or caBundleFile): "
        "a chain from any CA is accepted at /status; give the CA the signer issues from"
    ]


def test_ca_bundle_file_counts_as_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(self_signed_ca_pem())
    assert warnings_of(tmp_path, caBundle="    caBundleFile: ca.pem\n") == []


def test_warns_without_issuers(tmp_path: Path) -> None:
    assert warnings_of(tmp_path, issuers=None) == [
        "6: spec.podCertificates: warning: podCertificates has no issuers: anyone RBAC lets "
        "`sign` for the signer may write any chain the issued patterns permit; name the "
        "signer's service account"
    ]


@pytest.mark.parametrize(
    ("issued", "line", "path"),
    [
        (None, 6, "spec.podCertificates"),
        ('    issued: {usages: ["client auth"], lifetime: {max: 24h}}\n', 8, "spec.podCertificates.issued"),
    ],
)  # fmt: skip
def test_warns_when_issued_lists_no_san_pattern(
    tmp_path: Path, issued: str | None, line: int, path: str
) -> None:
    assert warnings_of(tmp_path, issued=issued) == [
        f"{line}: {path}: warning: podCertificates.issued lists no SAN pattern (dnsNames, "
        "ipAddresses, uris, emailAddresses): every certificate that names its pod is refused "
        "at /status (pod.san_not_allowed)"
    ]


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        (
            "92d",
            "maxExpirationSeconds 7948800s is above 7862400s (91 days), which the API server "
            "already refuses in spec.maxExpirationSeconds: the cap limits nothing",
        ),
        (
            "59m",
            "maxExpirationSeconds 3540s is below 3600s (1h), the least the API server accepts "
            "in spec.maxExpirationSeconds: every PodCertificateRequest is refused "
            "(lifetime.too_long)",
        ),
    ],
)
def test_warns_about_a_cap_the_api_server_makes_meaningless(
    tmp_path: Path, cap: str, expected: str
) -> None:
    found = warnings_of(tmp_path, maxExpirationSeconds=f"    maxExpirationSeconds: {cap}\n")
    assert found == [f"9: spec.podCertificates.maxExpirationSeconds: warning: {expected}"]


@pytest.mark.parametrize("cap", ["91d", "1h", "7862400", "3600"])
def test_caps_within_the_api_servers_range_raise_no_warning(tmp_path: Path, cap: str) -> None:
    assert warnings_of(tmp_path, maxExpirationSeconds=f"    maxExpirationSeconds: {cap}\n") == []


def test_warns_when_issued_lifetime_max_exceeds_the_cap(tmp_path: Path) -> None:
    issued = '    issued:\n      uris: ["spiffe://x/${pod.uid}"]\n      lifetime: {max: 48h}\n'
    assert warnings_of(tmp_path, issued=issued) == [
        "10: spec.podCertificates.issued.lifetime.max: warning: issued.lifetime.max 172800s is "
        "above maxExpirationSeconds 86400s: no request may ask for that long, so the bound is "
        "never reached"
    ]


def test_issued_lifetime_max_within_the_cap_raises_no_warning(tmp_path: Path) -> None:
    issued = '    issued:\n      uris: ["spiffe://x/${pod.uid}"]\n      lifetime: {max: 24h}\n'
    assert warnings_of(tmp_path, issued=issued) == []


@pytest.mark.parametrize(
    "requesters",
    [
        "    requesters: {}\n",
        '    requesters: {serviceAccounts: ["ci/bot"]}\n',
        '    requesters: {groups: ["system:nodes"]}\n',
    ],
)
def test_warns_when_non_node_creators_choose_the_pod_templates(
    tmp_path: Path, requesters: str
) -> None:
    """NodeRestriction checks spec.podName, podUID and serviceAccountName only for a node: any
    other creator writes them as it likes, so ${pod.*} in `issued` names what it claims."""
    found = warnings_of(tmp_path, requesters=requesters)
    line = 7 + sum(text.count("\n") for text in CAREFUL.values())  # requesters come last
    assert found == [
        f"{line}: spec.podCertificates.requesters: warning: requesters admit creators that are not "
        "nodes, and for them the API server checks no pod field: issued.uris[0] "
        "'spiffe://cluster.local/ns/${pod.namespace}/sa/x' takes ${pod.namespace} from what the "
        "creator wrote (it may name any pod, service account or UID that `pods` allows); admit "
        'only nodes (users: ["system:node:*"]) or leave ${pod.*} out of issued'
    ]


def test_warns_when_non_node_creators_choose_a_subject_template(tmp_path: Path) -> None:
    issued = (
        '    issued:\n      uris: ["spiffe://cluster.local/ns/ci/sa/bot"]\n'
        '      subject: {commonName: ["${pod.name}"]}\n'
    )
    found = warnings_of(tmp_path, requesters="    requesters: {}\n", issued=issued)
    assert [w.partition(" warning: ")[2] for w in found] == [
        "requesters admit creators that are not nodes, and for them the API server checks no "
        "pod field: issued.subject.commonName[0] '${pod.name}' takes ${pod.name} from what the "
        "creator wrote (it may name any pod, service account or UID that `pods` allows); admit "
        'only nodes (users: ["system:node:*"]) or leave ${pod.*} out of issued'
    ]


def test_default_and_node_requesters_raise_no_template_warning(tmp_path: Path) -> None:
    nodes = '    requesters: {users: ["system:node:*"], groups: ["system:nodes"]}\n'
    assert warnings_of(tmp_path, requesters=nodes) == []
    assert warnings_of(tmp_path, requesters=None) == []


def test_non_node_creators_without_pod_templates_raise_no_warning(tmp_path: Path) -> None:
    fixed = '    issued: {uris: ["spiffe://cluster.local/ns/ci/sa/bot"]}\n'
    found = warnings_of(tmp_path, requesters="    requesters: {}\n", issued=fixed)
    assert found == []


def test_a_refused_san_pattern_is_no_missing_one(tmp_path: Path) -> None:
    """A pattern the loader refused is reported as its error, not again as 'lists no SAN
    pattern' (the author did list one)."""
    file = tmp_path / "p.yaml"
    issued = '    issued: {uris: ["spiffe://x/${pod.serviceAccount}"]}\n'
    file.write_text(HEADER + "".join({**CAREFUL, "issued": issued}.values()))
    result = load_policies([file], lint=True)
    assert [p.path for p in result.errors] == ["spec.podCertificates.issued.uris[0]"]
    assert [str(p) for p in result.problems if p not in result.errors] == []


def test_warns_about_double_star_inside_an_issued_uri_path(tmp_path: Path) -> None:
    """The CSR lint's own example, in podCertificates.issued: `**` before `sa/` lets the
    signer issue a pod the identity of its service account's namesake in any namespace."""
    issued = '    issued: {uris: ["spiffe://cluster.local/**/sa/${pod.serviceAccountName}"]}\n'
    assert warnings_of(tmp_path, issued=issued) == [
        "8: spec.podCertificates.issued.uris[0]: warning: '**' inside the path of "
        "'spiffe://cluster.local/**/sa/${pod.serviceAccountName}' stands for any one or more "
        "path segments, so the signer may also issue "
        "'spiffe://cluster.local/ns/another-namespace/sa/${pod.serviceAccountName}': the "
        "identity of its namesake in every other namespace; spell each segment out and bind "
        "the pod's own with templates "
        "('spiffe://cluster.local/ns/${pod.namespace}/sa/${pod.serviceAccountName}')"
    ]


def test_a_trailing_double_star_in_an_issued_uri_raises_no_warning(tmp_path: Path) -> None:
    issued = '    issued: {uris: ["spiffe://cluster.local/ns/${pod.namespace}/**"]}\n'
    assert warnings_of(tmp_path, issued=issued) == []


def test_warns_about_issued_patterns_that_admit_every_value_and_usage_any(
    tmp_path: Path,
) -> None:
    issued = (
        "    issued:\n"
        '      uris: ["spiffe://cluster.local/ns/${pod.namespace}/sa/x"]\n'
        '      dnsNames: ["**"]\n'
        '      ipAddresses: ["0.0.0.0/0"]\n'
        '      usages: ["digital signature", "any"]\n'
    )
    assert warnings_of(tmp_path, issued=issued) == [
        "10: spec.podCertificates.issued.dnsNames[0]: warning: '**' admits every DNS name; "
        "the signer may write any such SAN into a pod's certificate: list the names meant",
        "11: spec.podCertificates.issued.ipAddresses[0]: warning: '0.0.0.0/0' admits every "
        "IPv4 address; the signer may write any such SAN into a pod's certificate: list the "
        "names meant",
        "12: spec.podCertificates.issued.usages[1]: warning: usage 'any' (anyExtendedKeyUsage) "
        "makes a certificate valid for every purpose, and lets a leaf without extended key "
        "usage through; list the usages the workload needs",
    ]
