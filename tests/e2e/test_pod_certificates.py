"""PodCertificateRequests against the real control plane (issue 16): a node asks for its pods'
certificates and the test signer writes chains through /status, under the e2e-pod-identity
overlay (tests/e2e/policies/pod-certificates/). What the policy allows is stored; what it
refuses is refused by the API server with our message (and our codes in the review we
answered); what the API server itself refuses before admission never reaches us."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.e2e.cluster import Cluster
from tests.e2e.kube import reviews_of
from tests.e2e.pods import (
    NODE,
    OTHER_NAMESPACE,
    SIGNER_ACCOUNT,
    SIGNER_NAMESPACE,
    TEAM_NAMESPACE,
    BoundPod,
    Issued,
    SignerCA,
    StubKey,
    create_as_node,
    create_bound_pods,
    legacy_pcr_manifest,
    pcr_manifest,
    signer_rbac,
    stored_pcr,
    write_status,
)
from tests.e2e.recorder import Exchange, Recorder
from tests.e2e.webhook import Webhook

pytestmark = pytest.mark.e2e

DENIED_BY_US = 'admission webhook "validate.csr-webhook.io" denied the request: '
AUDIENCE = {"example.com/audience": "api"}
CA_FILE = "e2e-pod-ca.pem"  # the overlay's caBundleFile


def _p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class PodWorld:
    """The cluster with the bound Pods and the overlay in force, and the signer's CA."""

    cluster: Cluster
    recorder: Recorder
    pods: dict[str, BoundPod]
    ca: SignerCA

    @property
    def team(self) -> BoundPod:
        return self.pods[TEAM_NAMESPACE]

    def create(
        self,
        name: str,
        key: StubKey,
        *,
        pod: BoundPod | None = None,
        max_expiration_seconds: int = 86400,
        annotations: dict[str, str] | None = None,
    ) -> tuple[subprocess.CompletedProcess[str], list[Exchange]]:
        """Create as the node; the answer and the /validate reviews it caused."""
        manifest = pcr_manifest(
            name,
            pod or self.team,
            key,
            max_expiration_seconds=max_expiration_seconds,
            annotations=AUDIENCE if annotations is None else annotations,
        )
        mark = self.recorder.mark()
        done = create_as_node(self.cluster, manifest)
        return done, _validating(self.recorder.since(mark), name)

    def issue(
        self, name: str, issued: Issued, version: str = "v1"
    ) -> tuple[subprocess.CompletedProcess[str], list[Exchange]]:
        """Write the chain as the signer; the answer and the /validate reviews it caused."""
        mark = self.recorder.mark()
        done = write_status(self.cluster, self.team.namespace, name, issued, version)
        return done, _validating(self.recorder.since(mark), name)


def _validating(exchanges: list[Exchange], name: str) -> list[Exchange]:
    return [e for e in reviews_of(exchanges, name) if e.path == "/validate"]


def _verdict(exchange: Exchange) -> tuple[bool, frozenset[str]]:
    response = (exchange.response or {}).get("response", {})
    causes = response.get("status", {}).get("details", {}).get("causes", [])
    return bool(response.get("allowed")), frozenset(c["reason"] for c in causes)


def _our_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if DENIED_BY_US in line]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def world(cluster: Cluster, webhook: Webhook, recorder: Recorder) -> Iterator[PodWorld]:
    """The Node, the bound Pods, the signer's RBAC and CA, and the overlay in force: a dry run
    of a request with an annotation the policy does not know is refused by us, four times in
    a row (this also waits for NodeRestriction's informers to know the Pods)."""
    recorder.scenario = "pod_certificates_setup"
    pods = create_bound_pods(cluster)
    cluster.apply(signer_rbac())
    ca = SignerCA("e2e pod identity")
    probe = pcr_manifest(
        "e2e-pcr-probe",
        pods[TEAM_NAMESPACE],
        _p256(),
        annotations={"example.com/probe": "in-force"},
    )

    def in_force() -> bool:
        done = create_as_node(cluster, probe, "--dry-run=server")
        refused = done.returncode != 0 and DENIED_BY_US in done.stderr
        return refused and "'example.com/probe' is not allowed" in done.stderr

    with webhook.overlay(
        "pod-certificates", probe=in_force, files={CA_FILE: ca.root_pem().decode()}
    ):
        yield PodWorld(cluster, recorder, pods, ca)


def test_node_creates_the_pod_certificate_request_its_pod_may_have(world: PodWorld) -> None:
    done, reviews = world.create("e2e-pcr-allowed", _p256())
    assert done.returncode == 0, done.stderr
    assert stored_pcr(world.cluster, TEAM_NAMESPACE, "e2e-pcr-allowed") is not None
    [review] = reviews
    request = review.request["request"]
    assert request["userInfo"]["username"] == f"system:node:{NODE}"
    assert request["namespace"] == TEAM_NAMESPACE
    assert request["resource"]["resource"] == "podcertificaterequests"
    assert _verdict(review) == (True, frozenset())


@dataclass(frozen=True)
class CreateRefusal:
    """A request the node may make (NodeRestriction admits it) that the policy refuses."""

    case: str
    codes: frozenset[str]  # ours, in the review we answered
    words: tuple[str, ...]  # in our message, as the API server passes it on
    namespace: str = TEAM_NAMESPACE
    key: Callable[[], StubKey] = _p256
    max_expiration_seconds: int = 86400
    annotations: Mapping[str, str] = field(default_factory=lambda: AUDIENCE)


CREATE_REFUSALS = [
    CreateRefusal(
        "another-namespace",
        frozenset({"pod.namespace_not_allowed", "pod.service_account_not_allowed"}),
        ("other-pods", "team-*"),
        namespace=OTHER_NAMESPACE,
    ),
    CreateRefusal(
        "ed25519-key",
        frozenset({"key.type_not_allowed"}),
        ("ED25519 keys are not allowed",),
        key=ed25519.Ed25519PrivateKey.generate,
    ),
    CreateRefusal(
        "oversized-lifetime",
        frozenset({"lifetime.too_long"}),
        ("7862400", "86400"),
        max_expiration_seconds=7862400,
    ),
    CreateRefusal(
        "unknown-annotation",
        frozenset({"pod.annotation_not_allowed"}),
        ("example.com/role",),
        annotations={**AUDIENCE, "example.com/role": "admin"},
    ),
]


@pytest.mark.parametrize("refusal", CREATE_REFUSALS, ids=lambda r: r.case)
def test_pod_certificate_request_outside_the_policy_is_refused_with_our_message(
    world: PodWorld, refusal: CreateRefusal
) -> None:
    name = f"e2e-pcr-{refusal.case}"
    done, reviews = world.create(
        name,
        refusal.key(),
        pod=world.pods[refusal.namespace],
        max_expiration_seconds=refusal.max_expiration_seconds,
        annotations=dict(refusal.annotations),
    )
    assert done.returncode != 0
    line = _our_line(done.stderr)
    for word in refusal.words:
        assert word in line, line
    assert stored_pcr(world.cluster, refusal.namespace, name) is None
    [review] = reviews
    assert _verdict(review) == (False, refusal.codes)


def test_signer_writes_a_good_chain_and_it_is_stored(world: PodWorld) -> None:
    key = _p256()
    created, _ = world.create("e2e-pcr-issued", key)
    assert created.returncode == 0, created.stderr
    issued = world.ca.issue(key.public_key(), uris=[world.team.spiffe_id()])
    done, reviews = world.issue("e2e-pcr-issued", issued)
    assert done.returncode == 0, done.stderr
    stored = stored_pcr(world.cluster, TEAM_NAMESPACE, "e2e-pcr-issued")
    assert stored is not None
    assert stored["status"]["certificateChain"] == issued.chain_pem
    assert [c["type"] for c in stored["status"]["conditions"]] == ["Issued"]
    [review] = reviews
    request = review.request["request"]
    assert request["subResource"] == "status"
    assert request["userInfo"]["username"] == (
        f"system:serviceaccount:{SIGNER_NAMESPACE}:{SIGNER_ACCOUNT}"
    )
    assert _verdict(review) == (True, frozenset())


@dataclass(frozen=True)
class ChainRefusal:
    """A chain the API server's status validation accepts and the policy refuses."""

    case: str
    chain: Callable[[PodWorld, ec.EllipticCurvePrivateKey], Issued]
    codes: frozenset[str]
    words: tuple[str, ...]


CHAIN_REFUSALS = [
    ChainRefusal(
        "extra-dns-san",
        lambda world, key: world.ca.issue(
            key.public_key(), uris=[world.team.spiffe_id()], dns_names=["evil.example.com"]
        ),
        frozenset({"pod.san_not_allowed"}),
        ("evil.example.com",),
    ),
    ChainRefusal(
        "rogue-ca",
        lambda world, key: SignerCA("rogue").issue(key.public_key(), uris=[world.team.spiffe_id()]),
        frozenset({"pod.chain_untrusted"}),
        ("caBundle",),
    ),
]


@pytest.mark.parametrize("refusal", CHAIN_REFUSALS, ids=lambda r: r.case)
def test_chain_outside_the_policy_is_refused_with_our_message(
    world: PodWorld, refusal: ChainRefusal
) -> None:
    """Each on a request of its own: Issued is terminal."""
    name = f"e2e-pcr-{refusal.case}"
    key = _p256()
    created, _ = world.create(name, key)
    assert created.returncode == 0, created.stderr
    done, reviews = world.issue(name, refusal.chain(world, key))
    assert done.returncode != 0
    line = _our_line(done.stderr)
    for word in refusal.words:
        assert word in line, line
    stored = stored_pcr(world.cluster, TEAM_NAMESPACE, name)
    assert stored is not None and not stored.get("status"), stored
    [review] = reviews
    assert review.request["request"]["subResource"] == "status"
    assert _verdict(review) == (False, refusal.codes)


def test_chain_for_another_key_is_refused_by_the_api_server_before_admission(
    world: PodWorld,
) -> None:
    """The status strategy compares the leaf's key with the stub's and refuses before any
    validating webhook is called: pod.key_mismatch is defence in depth (tests/ cover it)."""
    key, other = _p256(), _p256()
    created, _ = world.create("e2e-pcr-other-key", key)
    assert created.returncode == 0, created.stderr
    issued = world.ca.issue(other.public_key(), uris=[world.team.spiffe_id()])
    done, reviews = world.issue("e2e-pcr-other-key", issued)
    assert done.returncode != 0
    assert "leaf certificate was not issued to the requested public key" in done.stderr
    assert DENIED_BY_US not in done.stderr
    assert reviews == []
    stored = stored_pcr(world.cluster, TEAM_NAMESPACE, "e2e-pcr-other-key")
    assert stored is not None and not stored.get("status"), stored


def test_v1beta1_request_with_a_proof_of_possession_is_judged_by_its_key(
    world: PodWorld,
) -> None:
    """certificates.k8s.io/v1beta1 (pkixPublicKey + proofOfPossession, no stub; the API server
    verifies the proof): the review comes as v1beta1, with the key (converted to v1 the key
    would be lost: manifests/base lists both versions), and we judge that key."""
    mark = world.recorder.mark()
    manifest = legacy_pcr_manifest(
        "e2e-pcr-v1beta1-ed25519", world.team, ed25519.Ed25519PrivateKey.generate()
    )
    done = create_as_node(world.cluster, manifest)
    [review] = _validating(world.recorder.since(mark), "e2e-pcr-v1beta1-ed25519")
    request = review.request["request"]
    assert request["kind"]["version"] == "v1beta1"
    assert "pkixPublicKey" in request["object"]["spec"]
    assert _verdict(review) == (False, frozenset({"key.type_not_allowed"}))
    assert "spec.pkixPublicKey: ED25519 keys are not allowed" in _our_line(done.stderr)


def test_v1beta1_request_is_issued_through_v1beta1_only(world: PodWorld) -> None:
    """A request made with pkixPublicKey has no key in its v1 form: a signer writing /status
    through v1 is refused (we cannot match the leaf to the key, so we fail closed); through
    v1beta1 the review carries the key and a good chain is stored."""
    key = _p256()
    mark = world.recorder.mark()
    done = create_as_node(world.cluster, legacy_pcr_manifest("e2e-pcr-v1beta1", world.team, key))
    [review] = _validating(world.recorder.since(mark), "e2e-pcr-v1beta1")
    assert done.returncode == 0, done.stderr
    assert _verdict(review) == (True, frozenset())
    issued = world.ca.issue(key.public_key(), uris=[world.team.spiffe_id()])

    through_v1, reviews = world.issue("e2e-pcr-v1beta1", issued)
    assert through_v1.returncode != 0
    assert "the stored request's key cannot be read" in _our_line(through_v1.stderr)
    [review] = reviews
    assert review.request["request"]["kind"]["version"] == "v1"
    assert _verdict(review) == (False, frozenset({"pod.key_mismatch"}))

    through_v1beta1, reviews = world.issue("e2e-pcr-v1beta1", issued, "v1beta1")
    assert through_v1beta1.returncode == 0, through_v1beta1.stderr
    [review] = reviews
    assert review.request["request"]["kind"]["version"] == "v1beta1"
    assert _verdict(review) == (True, frozenset())
    stored = stored_pcr(world.cluster, TEAM_NAMESPACE, "e2e-pcr-v1beta1")
    assert stored is not None
    assert stored["status"]["certificateChain"] == issued.chain_pem
