"""`spec.podCertificates`: what a policy for PodCertificateRequests loads as, and every load
error it can earn, each as file:line: path: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cryptography import x509

from tests.builders import build_csr
from tests.certs import self_signed_ca_pem
from tests.conftest import MakeApp
from tests.reviews import create_review, mutating_create_review
from tests.test_manual import code, table
from webhook.matching.patterns import PatternKind, compile_pattern
from webhook.matching.subjects import Subjects
from webhook.matching.variables import POD_VARIABLES
from webhook.policy import schema
from webhook.policy.build_pods import annotation_key_problem, nodes_only_requesters
from webhook.policy.loader import load_policies
from webhook.policy.model import KeyRules, Lifetime, PodCertificates, SignerPolicy
from webhook.policy.schema import KNOWN_USAGES

HEADER = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: mesh}
spec:
  signerNames: ["example.com/mesh"]
"""


def load(tmp_path: Path, body: str, **files: bytes) -> tuple[SignerPolicy | None, list[str]]:
    """The one policy of HEADER + `body` (indented under spec) and its problems."""
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    file = tmp_path / "p.yaml"
    file.write_text(HEADER + textwrap.indent(textwrap.dedent(body), "  "))
    result = load_policies([file])
    problems = [str(p).removeprefix(f"{file}:") for p in result.problems]
    if result.policy_set is None:
        return None, problems
    [policy] = result.policy_set.policies
    return policy, problems


def pods_of(tmp_path: Path, body: str) -> PodCertificates:
    policy, problems = load(tmp_path, body)
    assert problems == []
    assert policy is not None and policy.pod_certificates is not None
    return policy.pod_certificates


def texts(patterns: tuple[object, ...] | None) -> list[str] | None:
    return None if patterns is None else [p.text for p in patterns]  # type: ignore[attr-defined]


def test_every_field_loads_into_the_model(tmp_path: Path) -> None:
    ca = self_signed_ca_pem()
    body = textwrap.dedent(
        """\
        podCertificates:
          requesters: {users: ["system:node:*"]}
          pods:
            namespaces: ["team-*"]
            serviceAccounts: ["team-*/*"]
          keys: {ecdsa: {curves: [P-256]}}
          maxExpirationSeconds: 24h
          annotations: {allowed: {"example.com/audience": ["api", "db-*"]}}
          issued:
            uris: ["spiffe://cluster.local/ns/${pod.namespace}/sa/${pod.serviceAccountName}"]
            dnsNames: ["${node}.nodes.example.com", "${pod.name}.${pod.uid}.example.com"]
            ipAddresses: ["10.0.0.0/8"]
            emailAddresses: ["${signerName}@example.com"]
            subject: {commonName: ["${pod.name}"], organization: ["mesh.example.com"]}
            usages: ["digital signature", "client auth"]
            lifetime: {min: 1h, max: 12h}
          issuers: {serviceAccounts: ["mesh-system/signer"]}
          caBundle: |
        """
    )
    pods = pods_of(tmp_path, body + textwrap.indent(ca.decode(), "    "))
    assert texts(pods.requesters.users) == ["system:node:*"]
    assert pods.requesters.groups is None
    assert pods.nodes_only is True
    assert texts(pods.namespaces) == ["team-*"]
    assert pods.service_accounts is not None
    assert pods.service_accounts[0].kind is PatternKind.SERVICE_ACCOUNT
    assert texts(pods.service_accounts) == ["team-*/*"]
    assert pods.keys == KeyRules(
        rsa=None, ecdsa_curves=frozenset({"P-256"}), ed25519=False, ed448=False
    )
    assert pods.max_expiration_seconds == 86400
    assert {key: texts(values) for key, values in pods.annotations.items()} == {
        "example.com/audience": ["api", "db-*"]
    }
    issued = pods.issued
    assert [p.kind for p in issued.uris] == [PatternKind.URI]
    assert [p.kind for p in issued.dns_names] == [PatternKind.DNS, PatternKind.DNS]
    assert issued.ip_addresses == (compile_pattern(PatternKind.IP, "10.0.0.0/8"),)
    assert texts(issued.email_addresses) == ["${signerName}@example.com"]
    assert {name: texts(values) for name, values in issued.subject.items()} == {
        "commonName": ["${pod.name}"],
        "organization": ["mesh.example.com"],
    }
    assert issued.subject["commonName"][0].kind is PatternKind.GLOB
    assert issued.usages == frozenset({"digital signature", "client auth"})
    assert issued.lifetime == Lifetime(min=3600, max=43200, clamp=False)
    assert pods.issuers is not None and texts(pods.issuers.service_accounts) == [
        "mesh-system/signer"
    ]
    [der] = pods.ca_certificates_der
    assert x509.load_der_x509_certificate(der) == x509.load_pem_x509_certificate(ca)


def test_absent_fields_take_the_declared_defaults(tmp_path: Path) -> None:
    pods = pods_of(tmp_path, "podCertificates: {}\n")
    assert texts(pods.requesters.users) == ["system:node:*"]
    assert texts(pods.requesters.groups) == ["system:nodes"]
    assert pods.nodes_only is True
    assert (pods.namespaces, pods.service_accounts) == (None, None)
    assert pods.keys == KeyRules(
        rsa=(2048, 8192),
        ecdsa_curves=frozenset({"P-256", "P-384", "P-521"}),
        ed25519=True,
        ed448=False,
    )
    assert pods.max_expiration_seconds is None
    assert pods.annotations == {}
    assert pods.issued.uris == pods.issued.dns_names == ()
    assert pods.issued.subject == {}
    assert pods.issued.usages == frozenset()
    assert pods.issued.lifetime == Lifetime(clamp=False)
    assert (pods.issuers, pods.ca_certificates_der) == (None, ())


def test_a_policy_without_pod_certificates_has_none(tmp_path: Path) -> None:
    policy, problems = load(tmp_path, 'rules: [{name: r, allowed: {usages: ["client auth"]}}]\n')
    assert problems == []
    assert policy is not None and policy.pod_certificates is None


def test_a_policy_needs_rules_or_pod_certificates(tmp_path: Path) -> None:
    policy, problems = load(tmp_path, "enforcement: Deny\n")
    assert policy is None
    assert problems == [
        "4: spec: missing required field: at least one of 'rules' or 'podCertificates'"
    ]


def test_pod_certificates_without_rules_refuses_every_csr_of_the_signer(
    make_app: MakeApp,
) -> None:
    app = make_app(
        {
            "mesh.yaml": HEADER
            + '  podCertificates:\n    issued: {uris: ["spiffe://cluster.local/${pod.name}"]}\n'
        }
    )
    client = app.test_client()
    pem = build_csr(common_name="alice")
    body = client.post(
        "/validate", json=create_review(pem, signer_name="example.com/mesh")
    ).get_json()
    assert body["response"]["allowed"] is False
    causes = body["response"]["status"]["details"]["causes"]
    assert [c["reason"] for c in causes] == ["requester.not_permitted"]
    assert body["response"]["status"]["message"].startswith("policy 'mesh'")
    mutated = client.post(
        "/mutate", json=mutating_create_review(pem, signer_name="example.com/mesh")
    ).get_json()
    assert mutated["response"]["allowed"] is True and "patch" not in mutated["response"]


@pytest.mark.parametrize(
    ("users", "groups", "expected"),
    [
        (["system:node:*"], None, True),
        (["system:node:*"], ["system:nodes"], True),
        (["system:node:worker-1", "system:node:worker-2"], None, True),
        (None, ["system:nodes"], False),  # a group admits whoever is put in it
        (["system:node:*", "alice"], None, False),
        (["*"], None, False),
        (["system:*"], None, False),  # matches system:node:x, and system:kube-proxy too
    ],
)
def test_nodes_only_when_every_user_pattern_starts_with_the_node_prefix(
    users: list[str] | None, groups: list[str] | None, expected: bool
) -> None:
    def patterns(values: list[str] | None) -> tuple[object, ...] | None:
        if values is None:
            return None
        return tuple(compile_pattern(PatternKind.GLOB, v) for v in values)

    requesters = Subjects(users=patterns(users), groups=patterns(groups))  # type: ignore[arg-type]
    assert nodes_only_requesters(requesters) is expected


def test_node_template_in_issued_loads_for_node_requesters(tmp_path: Path) -> None:
    pods = pods_of(
        tmp_path,
        """\
        podCertificates:
          requesters: {users: ["system:node:*"], groups: ["system:nodes"]}
          issued: {dnsNames: ["${node}.nodes.example.com"]}
        """,
    )
    assert texts(pods.issued.dns_names) == ["${node}.nodes.example.com"]


POD_VARIABLES_SHOWN = "${pod.name}, ${pod.namespace}, ${pod.serviceAccountName}, ${pod.uid}"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            """\
            podCertificates:
              requesters: {groups: ["system:nodes"]}
              issued: {dnsNames: ["${node}.example.com"]}
            """,
            "8: spec.podCertificates.issued.dnsNames[0]: ${node} in '${node}.example.com' needs "
            'requesters that admit only nodes (users: ["system:node:*"]): only then is the '
            "creator, the node in spec.nodeName, known when the signer writes /status; these "
            "requesters admit others",
        ),
        (
            """\
            podCertificates:
              issued: {uris: ["spiffe://cluster.local/ns/${sa.namespace}/sa/${sa.name}"]}
            """,
            "7: spec.podCertificates.issued.uris[0]: ${sa.name} in "
            "'spiffe://cluster.local/ns/${sa.namespace}/sa/${sa.name}' is a CSR requester's "
            f"template; podCertificates.issued patterns may use {POD_VARIABLES_SHOWN}, "
            "${signerName}, ${node}",
        ),
        (
            """\
            podCertificates:
              requesters: {serviceAccounts: ["kube-system/agent"]}
              issued: {emailAddresses: ["${username}@example.com"]}
            """,
            "8: spec.podCertificates.issued.emailAddresses[0]: ${username} in "
            "'${username}@example.com' is a CSR requester's template; podCertificates.issued "
            f"patterns may use {POD_VARIABLES_SHOWN}, ${{signerName}} (and ${{node}} when "
            "requesters admit only nodes)",
        ),
        (
            """\
            rules:
              - name: r
                allowed: {usages: ["client auth"], dnsNames: {values: ["${pod.name}.example.com"]}}
            """,
            "8: spec.rules[0].allowed.dnsNames.values[0]: ${pod.name} in '${pod.name}.example.com'"
            " is a pod template, defined only in podCertificates.issued; a CSR's patterns may use "
            "${node}, ${sa.name}, ${sa.namespace}, ${signerName}, ${username}",
        ),
        (
            """\
            deny: {uris: ["spiffe://cluster.local/ns/${pod.namespace}/**"]}
            podCertificates: {}
            """,
            "6: spec.deny.uris[0]: ${pod.namespace} in 'spiffe://cluster.local/ns/${pod.namespace}"
            "/**' is a pod template, defined only in podCertificates.issued; a CSR's patterns may "
            "use ${node}, ${sa.name}, ${sa.namespace}, ${signerName}, ${username}",
        ),
        (
            """\
            podCertificates:
              pods: {namespaces: ["${pod.namespace}"]}
            """,
            "7: spec.podCertificates.pods.namespaces[0]: templates are not allowed here: "
            "'${pod.namespace}'",
        ),
        (
            """\
            podCertificates:
              annotations: {allowed: {"example.com/audience": ["${pod.name}"]}}
            """,
            "7: spec.podCertificates.annotations.allowed.example.com/audience[0]: templates are "
            "not allowed here: '${pod.name}'",
        ),
        (
            """\
            podCertificates:
              pods: {serviceAccounts: ["team-a"]}
            """,
            "7: spec.podCertificates.pods.serviceAccounts[0]: serviceAccount pattern "
            "'team-a': expected 'namespace/name': exactly one '/', both parts non-empty",
        ),
        (
            """\
            podCertificates:
              issued: {ipAddresses: ["10.0.0.1/8"]}
            """,
            "7: spec.podCertificates.issued.ipAddresses[0]: ip pattern '10.0.0.1/8': "
            "host bits set; the network is 10.0.0.0/8",
        ),
        (
            """\
            podCertificates:
              issued: {subject: {commonName: ["${username}"]}}
            """,
            "7: spec.podCertificates.issued.subject.commonName[0]: ${username} in '${username}' "
            "is a CSR requester's template; podCertificates.issued patterns may use "
            "${pod.name}, ${pod.namespace}, ${pod.serviceAccountName}, ${pod.uid}, "
            "${signerName}, ${node}",
        ),
        (
            """\
            podCertificates:
              requesters: {users: ["system:node:${node}"]}
            """,
            "7: spec.podCertificates.requesters.users[0]: templates are not allowed here: "
            "'system:node:${node}'",
        ),
    ],
)
def test_template_and_pattern_problems_name_file_field_and_value(
    tmp_path: Path, body: str, expected: str
) -> None:
    policy, problems = load(tmp_path, body)
    assert policy is None
    assert problems == [expected]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("audience", "it must be a domain-prefixed key such as 'example.com/audience' (exactly "
         "one '/')"),
        ("a/b/c", "it must be a domain-prefixed key such as 'example.com/audience' (exactly one "
         "'/')"),
        ("/audience", "its prefix '' must be a DNS subdomain of at most 253 characters "
         "(lower-case letters, digits, '-' and '.', such as 'example.com')"),
        ("exa_mple.com/a", "its prefix 'exa_mple.com' must be a DNS subdomain of at most 253 "
         "characters (lower-case letters, digits, '-' and '.', such as 'example.com')"),
        ("example.com/", "its name '' must be 1 to 63 letters, digits, '-', '_' or '.', "
         "starting and ending with a letter or digit"),
        ("example.com/-a", "its name '-a' must be 1 to 63 letters, digits, '-', '_' or '.', "
         "starting and ending with a letter or digit"),
        (f"example.com/{'a' * 64}", f"its name '{'a' * 64}' must be 1 to 63 letters, digits, "
         "'-', '_' or '.', starting and ending with a letter or digit"),
        (f"{'a' * 250}.com/a", f"its prefix '{'a' * 250}.com' must be a DNS subdomain of at "
         "most 253 characters (lower-case letters, digits, '-' and '.', such as 'example.com')"),
    ],
)  # fmt: skip
def test_annotation_key_must_be_domain_prefixed(key: str, expected: str) -> None:
    assert annotation_key_problem(key) == expected


@pytest.mark.parametrize(
    "key", ["example.com/audience", "Example.COM/Audience", "a.b-c.example/x_y.z", "x/a"]
)
def test_annotation_keys_kubernetes_accepts_load(key: str) -> None:
    # ValidateUserAnnotations lower-cases the key before checking it.
    assert annotation_key_problem(key) is None


def test_bad_annotation_key_is_a_load_error_naming_it(tmp_path: Path) -> None:
    policy, problems = load(
        tmp_path,
        """\
        podCertificates:
          annotations:
            allowed:
              "example.com/audience": ["api"]
              audience: ["api"]
        """,
    )
    assert policy is None
    assert problems == [
        "10: spec.podCertificates.annotations.allowed.audience: annotation key 'audience' can "
        "never be sent (Kubernetes refuses it in unverifiedUserAnnotations): it must be a "
        "domain-prefixed key such as 'example.com/audience' (exactly one '/')"
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "podCertificates: {issued: {lifetime: {min: 30m}}}\n",
            "6: spec.podCertificates.issued.lifetime.min: '30m' is shorter than 1h: Kubernetes "
            "refuses a pod certificate that lives less than an hour",
        ),
        (
            "podCertificates: {issued: {lifetime: {min: 2h, max: 1h}}}\n",
            "6: spec.podCertificates.issued.lifetime.min: min '2h' is longer than max '1h'",
        ),
        (
            "podCertificates: {issued: {lifetime: {max: 1h30x}}}\n",
            "6: spec.podCertificates.issued.lifetime.max: '1h30x' is not a duration (use e.g. "
            "90s, 10m, 24h, 1h30m, 30d or whole seconds)",
        ),
        (
            "podCertificates: {maxExpirationSeconds: 1.5h}\n",
            "6: spec.podCertificates.maxExpirationSeconds: '1.5h' is not a duration (use e.g. "
            "90s, 10m, 24h, 1h30m, 30d or whole seconds)",
        ),
        (
            "podCertificates: {keys: {}}\n",
            "6: spec.podCertificates.keys: no key type is accepted (list rsa, ecdsa, ed25519 or "
            "ed448)",
        ),
        (
            "podCertificates: {keys: {ecdsa: {curves: [P-192]}}}\n",
            "6: spec.podCertificates.keys.ecdsa.curves[0]: must be one of 'P-256', 'P-384', "
            "'P-521', got 'P-192'",
        ),
        (
            "podCertificates: {issued: {usages: [client-auth]}}\n",
            "6: spec.podCertificates.issued.usages[0]: must be one of "
            + ", ".join(repr(u) for u in KNOWN_USAGES)
            + ", got 'client-auth'",
        ),
        (
            "podCertificates: {issued: {subject: {emailAddress: [x]}}}\n",
            "6: spec.podCertificates.issued.subject.emailAddress: unknown field 'emailAddress' "
            "(known: commonName, organization, organizationalUnit, country, locality, province, "
            "streetAddress, postalCode, serialNumber)",
        ),
        (
            "podCertificates: {issued: {subject: {organization: system:masters}}}\n",
            "6: spec.podCertificates.issued.subject.organization: must be a list, got string "
            "'system:masters'",
        ),
        (
            "podCertificates: {issued: {lifetime: {default: 1h}}}\n",
            "6: spec.podCertificates.issued.lifetime.default: unknown field 'default' "
            "(known: min, max)",
        ),
        (
            'podCertificates: {caBundle: "x", caBundleFile: ca.pem}\n',
            "6: spec.podCertificates: set caBundle or caBundleFile, not both",
        ),
        (
            'podCertificates: {caBundle: "not a certificate"}\n',
            "6: spec.podCertificates.caBundle: CA bundle does not parse as PEM certificates: "
            "Unable to load PEM file. See https://cryptography.io/en/latest/faq/#why-can-t-i-"
            "import-my-pem-file for more details. MalformedFraming",
        ),
        (
            "podCertificates: {caBundleFile: ../ca.pem}\n",
            "6: spec.podCertificates.caBundleFile: '../ca.pem' must be the name of a file beside "
            "the policy file (letters, digits, '-', '_' and '.'; no '/'): policies are mounted "
            "from a ConfigMap, one flat directory whose keys cannot hold a path",
        ),
        (
            "podCertificates: {pods: {namespaces: team-a}}\n",
            "6: spec.podCertificates.pods.namespaces: must be a list, got string 'team-a'",
        ),
    ],
)
def test_field_problems_name_file_field_and_value(tmp_path: Path, body: str, expected: str) -> None:
    policy, problems = load(tmp_path, body)
    assert policy is None
    assert problems == [expected]


def test_ca_bundle_file_is_read_beside_the_policy(tmp_path: Path) -> None:
    ca = self_signed_ca_pem()
    policy, problems = load(
        tmp_path, "podCertificates: {caBundleFile: mesh-ca.pem}\n", **{"mesh-ca.pem": ca}
    )
    assert problems == []
    assert policy is not None and policy.pod_certificates is not None
    [der] = policy.pod_certificates.ca_certificates_der
    assert x509.load_der_x509_certificate(der) == x509.load_pem_x509_certificate(ca)
    result = load_policies([tmp_path / "p.yaml"])
    assert result.needs == [("mesh", ("mesh-ca.pem",))]


def test_missing_ca_bundle_file_is_a_load_error(tmp_path: Path) -> None:
    policy, problems = load(tmp_path, "podCertificates: {caBundleFile: gone.pem}\n")
    assert policy is None
    [problem] = problems
    assert problem.startswith(
        f"6: spec.podCertificates.caBundleFile: cannot read '{tmp_path}/gone.pem': "
    )


# ---- the reference (docs/policy-reference.md §3.10) against the schema and the matcher ---------

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _schema_fields(shape: schema.Schema, prefix: str = "") -> list[str]:
    """Every field under `shape`, depth first: `issued`, `issued.dnsNames`, ... (a mapping whose
    keys are the author's, like `annotations.allowed`, is one field)."""
    out = []
    for key, child in shape.get("properties", {}).items():
        name = f"{prefix}{key}"
        out.append(name)
        out.extend(_schema_fields(child, f"{name}."))
    return out


def test_reference_lists_every_pod_certificates_field_with_its_default() -> None:
    rows = table(DOCS / "policy-reference.md", "pod-certificates-fields")
    shape = schema.SIGNER_POLICY["properties"]["spec"]["properties"]["podCertificates"]
    # The identity lists, key rules and subject attribute names are documented once, where
    # they first appear; the issued.subject row names every attribute.
    shared = ("requesters.", "issuers.", "keys.", "issued.subject.")
    expected = [f for f in _schema_fields(shape) if not f.startswith(shared)]
    assert [code(row[0]) for row in rows] == expected
    [subject_row] = [row for row in rows if code(row[0]) == "issued.subject"]
    assert all(f"`{name}`" in subject_row[1] for name in schema.SUBJECT_ATTRIBUTES)
    assert all(len(row) == 5 and all(row[:4]) for row in rows), "type, default and meaning"


def test_reference_lists_exactly_the_pod_template_variables() -> None:
    rows = table(DOCS / "policy-reference.md", "pod-templates")
    documented = [code(row[0]) for row in rows]
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    assert {v.removeprefix("${").removesuffix("}") for v in documented} == POD_VARIABLES
