"""The PolicyTest format (`*.test.yaml`), JSON Schema data built with the SignerPolicy's helpers.

`csr-webhook test` validates suites against it (webhook.policy.validation) and `csr-webhook
schema` prints it; what the schema cannot say (which fields an operation needs, known violation
codes, files) is the suite loader's (`webhook.authoring.suite`).
"""

from __future__ import annotations

from webhook.policy.schema import (
    API_VERSION,
    KNOWN_USAGES,
    NODE_ADDRESS_TYPES,
    SUBJECT_ATTRIBUTES,
    array,
    boolean,
    duration,
    either,
    enum,
    integer,
    obj,
    string,
    strings,
)
from webhook.sankinds import SAN_KINDS

TEST_KEY_TYPES = (
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
    "ecdsa-p256",
    "ecdsa-p384",
    "ecdsa-p521",
    "ed25519",
)
OPERATIONS = ("create", "mutate", "approve", "deny", "issue")
KINDS = ("CertificateSigningRequest", "PodCertificateRequest")
POD_OPERATIONS = ("create", "issue")  # a PodCertificateRequest has no /approval, no patch
POD_CONDITIONS = ("Issued", "Denied", "Failed")

_IDENTITY = obj(
    {"username": string(), "groups": array(string())},
    "an authenticated user: username and groups",
    required=("username",),
)
_SANS = {kind.key: array(string()) for kind in SAN_KINDS}
# Subject attributes other than commonName also take a single string, which the loader turns
# into a one-item list before validation.
_SUBJECT = obj(
    {
        name: string() if name == "commonName" else strings("one RDN per value")
        for name in SUBJECT_ATTRIBUTES
    }
)
_REQUEST = obj(
    {
        "key": enum(*TEST_KEY_TYPES, default="ecdsa-p256"),
        "subject": _SUBJECT,
        **_SANS,
    },
    "a CSR generated at run time; the key is never written to disk",
)
_CSR = obj(
    {
        "signerName": string(),
        "usages": array(enum(*KNOWN_USAGES), min_items=1),
        "expirationSeconds": integer("the API server rejects less than 600", minimum=600),
        "request": _REQUEST,
        "requestFile": string("a PEM file, relative to the test file"),
    },
    "the CertificateSigningRequest as created; exactly one of request and requestFile",
    required=("signerName", "usages"),
)
_CERTIFICATE = obj(
    {
        "signedBy": enum(
            "ca",
            "rogue",
            default="ca",
            description="ca: the suite's CA; rogue: a CA generated for the run that no policy "
            "trusts",
        ),
        "lifetime": duration("notAfter - now; default spec.expirationSeconds, at most 8760h"),
        "extraSANs": obj(_SANS, "SANs the certificate has beyond the CSR's"),
        "isCA": boolean("a CA certificate (basicConstraints CA:TRUE, cert sign)"),
        "usages": array(enum(*KNOWN_USAGES), "key usages and EKUs; default spec.usages"),
        "key": enum(
            "same",
            "other",
            default="same",
            description="same: the CSR's public key; other: a key that is not the CSR's",
        ),
    },
    "the certificate written to /status, issued as the in-tree signer does (5 min backdated)",
)
_POD = obj(
    {
        "apiVersion": enum(
            "v1",
            "v1beta1",
            default="v1",
            description="the version the request is sent and reviewed in",
        ),
        "signerName": string(),
        "namespace": string("the pod's namespace, the request's too"),
        "name": string("spec.podName"),
        "uid": string("spec.podUID; default: a UUID derived from namespace and name"),
        "serviceAccountName": string(),
        "nodeName": string(),
        "maxExpirationSeconds": integer(
            "absent: 86400, the API server's default", minimum=3600, maximum=7862400
        ),
        "key": enum(*TEST_KEY_TYPES, default="ecdsa-p256"),
        "stub": enum(
            "valid",
            "badSignature",
            "missing",
            default="valid",
            description="spec.stubPKCS10Request: the kubelet's stub CSR, one whose signature "
            "does not verify, or none",
        ),
        "proofOfPossession": enum(
            "valid",
            "invalid",
            description="v1beta1 only: send pkixPublicKey and proofOfPossession (a valid or a "
            "wrong signature over the pod UID) instead of the stub",
        ),
        "annotations": {
            "description": "spec.unverifiedUserAnnotations",
            "type": "object",
            "properties": {},
            "additionalProperties": {"type": "string"},
        },
    },
    "the PodCertificateRequest as a kubelet creates it; its key is generated at run time",
    required=("signerName", "namespace", "name", "serviceAccountName", "nodeName"),
)
_ISSUE = obj(
    {
        "signedBy": enum("ca", "rogue", default="ca"),
        "viaIntermediate": boolean("the leaf is signed by an intermediate that the chain carries"),
        "condition": enum(*POD_CONDITIONS, default="Issued"),
        "conditionStatus": enum("True", "False", "Unknown", default="True"),
        "extraCondition": enum(*POD_CONDITIONS, description="a second condition (status True)"),
        "chain": enum(
            "issued",
            "none",
            "malformed",
            description="certificateChain and the three times: written (default for Issued), "
            "absent (default for Denied and Failed), or a block that is no certificate",
        ),
        "subject": {**_SUBJECT, "description": "the leaf's subject; default empty"},
        **_SANS,
        "usages": array(enum(*KNOWN_USAGES), "the leaf's key usages and EKUs"),
        "lifetime": duration("notAfter - notBefore; default min(maxExpirationSeconds, 24h)"),
        "isCA": boolean("a CA certificate (basicConstraints CA:TRUE, cert sign)"),
        "key": enum("same", "other", default="same"),
        "timesOffset": duration("status.notBefore and notAfter this much after the leaf's"),
        "beginRefreshAt": duration("after notBefore; default three quarters of the lifetime"),
        "stored": enum(
            "pending",
            "issued",
            "denied",
            "failed",
            default="pending",
            description="the status already stored: pending, or a terminal one",
        ),
    },
    "what the signer writes to /status of a PodCertificateRequest",
)
_PATCH = either(
    enum("none"),
    obj(
        {"expirationSeconds": integer(minimum=0)},
        "the value the JSON Patch sets",
        required=("expirationSeconds",),
    ),
    description="mutate only: the expected patch of spec.expirationSeconds, or none",
)
# More pending CSRs than a policy's maxPending can ever allow is no case worth writing.
MAX_PENDING_COUNT = 1000
_NODE = obj(
    {
        "name": string("the Node's metadata.name"),
        "addresses": array(
            obj(
                {"type": enum(*NODE_ADDRESS_TYPES), "address": string()},
                "one entry of status.addresses",
                required=("type", "address"),
            )
        ),
    },
    required=("name",),
)
_PENDING = obj(
    {
        "signerName": string(),
        "username": string(),
        "count": integer(
            "pending CSRs besides the case's own", minimum=0, maximum=MAX_PENDING_COUNT
        ),
    },
    required=("signerName", "username", "count"),
)
_CLUSTER = either(
    enum("unknown"),
    obj(
        {
            "nodes": array(_NODE, "exactly the Nodes that exist"),
            "pendingCSRs": array(_PENDING, "pending CSRs per signer and requester; others: 0"),
        },
        "what the cluster knows",
    ),
    description="the cluster facts of constraints.node and maxPending; `unknown` (the default "
    "without one): every fact unknown, as without a cluster connection",
)
_CASE = obj(
    {
        "name": string("unique within the suite"),
        "kind": enum(*KINDS, default="CertificateSigningRequest"),
        "requester": _IDENTITY,
        "operation": enum(*OPERATIONS, default="create"),
        "actor": _IDENTITY,
        "csr": _CSR,
        "pod": _POD,
        "certificate": _CERTIFICATE,
        "issue": _ISSUE,
        "expect": enum("allowed", "denied", "warned", "audited"),
        "violations": array(string(), "codes, or families ending in '.', that must all appear"),
        "patch": _PATCH,
        "cluster": _CLUSTER,
    },
    required=("name", "requester"),
)
_CA = obj(
    {
        "certificateFile": string("PEM CA certificate, relative to the test file or absolute"),
        "keyFile": string("its unencrypted PEM private key (RSA or ECDSA); never commit it"),
    },
    "the CA that signs issue cases' certificates; default: one generated for the run, which "
    "stands in for the caBundle of every policy under test",
    required=("certificateFile", "keyFile"),
)
POLICY_TEST = obj(
    {
        "apiVersion": enum(API_VERSION),
        "kind": enum("PolicyTest"),
        "metadata": obj({"name": string()}, required=("name",)),
        "spec": obj(
            {
                "policies": array(string(), "policy files relative to the test file"),
                "ca": _CA,
                "cluster": _CLUSTER,
                "cases": array(_CASE, min_items=1),
            },
            required=("cases",),
        ),
    },
    "A PolicyTest suite",
    required=("apiVersion", "kind", "metadata", "spec"),
)
