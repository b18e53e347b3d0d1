"""The kustomize manifests (docs/deploy.md), checked offline.

Each kustomization is rendered by `kubectl kustomize` (kustomize itself, built into kubectl, on
every developer machine and on CI; without it these tests fail, they do not skip). Every
rendered object is validated against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: unknown fields are errors); custom resources, whose schemas it does not have
(cert-manager, Prometheus Operator), are checked by hand. Then the deployment requirements are
asserted one by one, cross-checked against the server's own defaults and the image
(Dockerfile), and the cert-manager overlay against its JSON patch applied by an RFC 6902
implementation of its own (the jsonpatch library).
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml
from flask import Flask

from tests.test_dockerfile import dockerfile_env
from webhook.authoring.configmap import configmap_files
from webhook.cli import ENV_PREFIX, build_parser
from webhook.policy.loader import is_policy_file, load_policies
from webhook.serving.views import blueprint

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
POLICIES = ROOT / "policies"
GENERATED_POLICIES = MANIFESTS / "base" / "policies"
KUSTOMIZATIONS = ("base", "cert-manager", "monitoring")

NAMESPACE = "csr-webhook"
POLICIES_CONFIGMAP = "csr-webhook-policies"
# The oldest Kubernetes the manifests are written for (matchLabelKeys and nodeTaintsPolicy in
# topology spread, unhealthyPodEvictionPolicy, the preStop sleep alternative); the newest
# schema kubernetes-validate ships is checked too.
MIN_KUBERNETES = "1.30"

CLUSTER_SCOPED = {
    "Namespace",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterIssuer",
    "CustomResourceDefinition",
    "PriorityClass",
}
WEBHOOK_CONFIGURATIONS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
CSR_RESOURCES = {
    "certificatesigningrequests",
    "certificatesigningrequests/approval",
    "certificatesigningrequests/status",
}
Obj = dict[str, Any]


# --- rendering ------------------------------------------------------------------------------


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    """`kubectl kustomize DIRECTORY`, whatever it answers."""
    if shutil.which("kubectl") is None:
        pytest.fail(
            "kubectl is not on PATH: tests/test_manifests.py renders the manifests with "
            "`kubectl kustomize` (developers and CI have kubectl; install it)"
        )
    return subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def render(directory: Path) -> list[Obj]:
    result = kustomize(directory)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    objects = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    ids = [identity(o) for o in objects]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"{directory}: objects defined twice: {duplicates}"
    return objects


def identity(obj: Obj) -> tuple[str, str, str, str]:
    group = obj["apiVersion"].rpartition("/")[0]
    return (group, obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


@functools.cache
def _rendered(name: str) -> list[Obj]:
    return render(MANIFESTS / name)


def rendered(name: str) -> list[Obj]:
    return copy.deepcopy(_rendered(name))


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _kustomizations() -> list[Path]:
    return sorted(p.parent for p in MANIFESTS.rglob("kustomization.yaml"))


def test_every_kustomization_renders() -> None:
    directories = _kustomizations()
    assert {MANIFESTS / name for name in KUSTOMIZATIONS} <= set(directories)
    for directory in directories:
        render(directory)


def test_kustomize_reads_no_file_outside_a_kustomization(tmp_path: Path) -> None:
    """Why make manifests-policies copies policies/ into manifests/base/policies/ (a relative
    path out of the directory or a symlink would do, were kustomize to allow them)."""
    (tmp_path / "outside.yaml").write_text("a: 1\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    for source in ("../outside.yaml", "link.yaml"):
        (root / "kustomization.yaml").write_text(
            f"configMapGenerator:\n  - name: x\n    files: [{source}]\n"
        )
        result = kustomize(root)
        assert result.returncode != 0, source
        assert "is not in or below" in result.stderr, result.stderr


def test_generated_config_maps_keep_their_names() -> None:
    """No name hash: the policy directory a pod mounts is updated in place and hot-reloaded,
    and the dashboard keeps the name Grafana's sidecar knows."""
    for directory in _kustomizations():
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        generated = {g["name"] for g in kustomization.get("configMapGenerator", [])}
        names = {o["metadata"]["name"] for o in render(directory) if o["kind"] == "ConfigMap"}
        assert generated <= names, f"{directory}: {sorted(generated - names)} renamed by a hash"
    assert {POLICIES_CONFIGMAP, "csr-webhook-dashboard"} <= {
        o["metadata"]["name"] for name in KUSTOMIZATIONS for o in rendered(name)
    }


# --- schemas --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate  # noqa: PLC0415 - a clear failure instead of a collection error
    except ImportError:
        pytest.fail(
            "kubernetes-validate is missing: install the test extras (pip install -e '.[test]')"
        )
    return kubernetes_validate


CUSTOM_GROUPS = {"cert-manager.io", "monitoring.coreos.com"}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_builtin_object_matches_the_kubernetes_schema(
    name: str, kubernetes_validate: Any
) -> None:
    versions = sorted({MIN_KUBERNETES, kubernetes_validate.latest_version()})
    for obj in rendered(name):
        if identity(obj)[0] in CUSTOM_GROUPS:
            continue
        applied = _with_real_ca_bundle(obj)
        for version in versions:
            try:
                kubernetes_validate.validate(applied, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{name}: {identity(obj)} against {version}: {where}: {exc.message}")


def _with_real_ca_bundle(obj: Obj) -> Obj:
    """The documented no-cert-manager step: the placeholder replaced by a base64 CA."""
    obj = copy.deepcopy(obj)
    for hook in obj.get("webhooks", []):
        if "caBundle" in hook["clientConfig"]:
            hook["clientConfig"]["caBundle"] = base64.b64encode(
                b"-----BEGIN CERTIFICATE-----"
            ).decode()
    return obj


CERTIFICATE_SPEC = {
    "additionalOutputFormats", "commonName", "dnsNames", "duration", "emailAddresses",
    "encodeUsagesInRequest", "ipAddresses", "isCA", "issuerRef", "keystores", "literalSubject",
    "nameConstraints", "otherNames", "privateKey", "renewBefore", "renewBeforePercentage",
    "revisionHistoryLimit", "secretName", "secretTemplate", "signatureAlgorithm", "subject",
    "uris", "usages",
}  # fmt: skip
CERTIFICATE_USAGES = {
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime",
    "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
    "microsoft sgc", "netscape sgc",
}  # fmt: skip
ISSUER_TYPES = {"acme", "ca", "selfSigned", "vault", "venafi"}
DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$")


def _check_custom(obj: Obj) -> None:
    """The parts of the CRDs' schemas these manifests use: apiVersion, kind, required fields,
    enums and no unknown top-level spec fields."""
    kind, spec = obj["kind"], obj.get("spec")
    assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}
    assert isinstance(spec, dict), "spec is required"
    assert obj["metadata"].get("name")
    if kind == "Issuer":
        assert obj["apiVersion"] == "cert-manager.io/v1"
        assert len(set(spec) & ISSUER_TYPES) == 1, f"exactly one issuer type: {sorted(spec)}"
        assert set(spec) <= ISSUER_TYPES
        if "ca" in spec:
            assert set(spec["ca"]) <= {
                "secretName",
                "crlDistributionPoints",
                "ocspServers",
                "issuingCertificateURLs",
            }
            assert spec["ca"]["secretName"]
        if "selfSigned" in spec:
            assert set(spec["selfSigned"]) <= {"crlDistributionPoints"}
    elif kind == "Certificate":
        assert obj["apiVersion"] == "cert-manager.io/v1"
        assert set(spec) <= CERTIFICATE_SPEC, sorted(set(spec) - CERTIFICATE_SPEC)
        assert spec["secretName"] and spec["issuerRef"]["name"]
        assert set(spec["issuerRef"]) <= {"name", "kind", "group"}
        assert spec.get("commonName") or spec.get("dnsNames") or spec.get("uris")
        assert set(spec.get("usages", [])) <= CERTIFICATE_USAGES
        for field in ("duration", "renewBefore"):
            assert field not in spec or DURATION.match(spec[field]), spec[field]
        key = spec.get("privateKey", {})
        assert set(key) <= {"algorithm", "encoding", "rotationPolicy", "size"}
        assert key.get("algorithm", "RSA") in {"RSA", "ECDSA", "Ed25519"}
        assert key.get("rotationPolicy", "Never") in {"Never", "Always"}
        if key.get("algorithm") == "ECDSA":
            assert key.get("size", 256) in {256, 384, 521}
    elif kind == "ServiceMonitor":
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        assert isinstance(spec["selector"], dict)
        assert spec["endpoints"]
        for endpoint in spec["endpoints"]:
            assert endpoint.get("port") or endpoint.get("targetPort")
    elif kind == "PrometheusRule":
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert rule["expr"]
                assert ("alert" in rule) != ("record" in rule)
    else:
        raise AssertionError(f"no hand-written schema check for {kind}")


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_custom_resources_are_well_formed(name: str) -> None:
    checked = 0
    for obj in rendered(name):
        if identity(obj)[0] in CUSTOM_GROUPS:
            try:
                _check_custom(obj)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {identity(obj)}: {exc}") from exc
            checked += 1
    assert checked or name == "base", f"{name}: no custom resource to check"


def test_every_namespaced_object_is_in_the_webhook_namespace() -> None:
    for name in KUSTOMIZATIONS:
        for obj in rendered(name):
            if obj["kind"] not in CLUSTER_SCOPED:
                assert obj["metadata"]["namespace"] == NAMESPACE, (name, identity(obj))
    base = rendered("base")
    assert one(base, "Namespace")["metadata"]["name"] == NAMESPACE
    kinds = {o["kind"] for o in base}
    assert kinds == {
        "Namespace", "ServiceAccount", "Service", "Deployment", "PodDisruptionBudget",
        "ConfigMap", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
        "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
    }  # fmt: skip


# --- the Deployment -------------------------------------------------------------------------


@pytest.fixture(params=["base", "cert-manager"])
def objects(request: pytest.FixtureRequest) -> list[Obj]:
    return rendered(request.param)


def _container(objects: list[Obj]) -> Obj:
    containers = one(objects, "Deployment", "csr-webhook")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Obj = containers[0]
    return container


def _pod(objects: list[Obj]) -> Obj:
    pod: Obj = one(objects, "Deployment", "csr-webhook")["spec"]["template"]
    return pod


def _port(container: Obj, port: int | str) -> int:
    """A probe's or Service's targetPort, by number or by the container port's name."""
    if isinstance(port, int):
        assert port in [p["containerPort"] for p in container["ports"]]
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    return monkeypatch


def _serve_args(container: Obj, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The flags as the server will see them: image environment, then the pod's, then args."""
    for key, value in {**dockerfile_env(), **_container_env(container)}.items():
        if key.startswith(ENV_PREFIX):
            monkeypatch.setenv(key, value)
    assert container.get("command") is None, "keep the image's ENTRYPOINT (csr-webhook serve)"
    return build_parser().parse_args(["serve", *container.get("args", [])])


def _container_env(container: Obj) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _mount(pod: Obj, container: Obj, path: str) -> tuple[Obj, Obj]:
    """The volume mount at exactly `path` and its volume."""
    mounts = [
        m for m in container["volumeMounts"] if m["mountPath"].rstrip("/") == path.rstrip("/")
    ]
    assert len(mounts) == 1, f"nothing mounted at {path}"
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mounts[0]["name"]]
    return mounts[0], volume


def _seconds(quantity: str | int) -> float:
    return float(quantity)


def _cpu(quantity: str | int) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _memory(quantity: str | int) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"([0-9]+)([KMG]i?)?", str(quantity))
    assert match, quantity
    return int(match.group(1)) * units.get(match.group(2) or "", 1)


def test_replicas_and_rollout_keep_a_webhook_ready(objects: list[Obj]) -> None:
    spec = one(objects, "Deployment", "csr-webhook")["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] >= 1


def test_pod_labels_select_consistently(objects: list[Obj]) -> None:
    deployment = one(objects, "Deployment", "csr-webhook")
    labels = _pod(objects)["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert labels["app.kubernetes.io/name"] == "csr-webhook"
    pdb = one(objects, "PodDisruptionBudget", "csr-webhook")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = one(objects, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    spread = _pod(objects)["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} >= {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
        assert constraint["maxSkew"] == 1


def test_pod_disruption_budget(objects: list[Obj]) -> None:
    pdb = one(objects, "PodDisruptionBudget", "csr-webhook")
    assert pdb["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in pdb["spec"]
    assert (
        one(objects, "Deployment", "csr-webhook")["spec"]["replicas"] > pdb["spec"]["minAvailable"]
    )


def test_restricted_security_context(objects: list[Obj]) -> None:
    pod = _pod(objects)["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"].get("runAsUser", 1) != 0
    context = _container(objects)["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert not context["capabilities"].get("add")
    assert context.get("privileged", False) is False
    # The token is for the cluster caches (manifests/base/rbac.yaml says what it may read).
    assert pod["automountServiceAccountToken"] is True
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_only_tmp_and_the_metrics_directory_are_writable(objects: list[Obj]) -> None:
    pod, container = _pod(objects), _container(objects)
    image = dockerfile_env()
    writable = {image["TMPDIR"], image["PROMETHEUS_MULTIPROC_DIR"]}
    assert writable == {"/tmp", "/var/run/csr-webhook/metrics"}
    for path in writable:
        mount, volume = _mount(pod, container, path)
        assert "emptyDir" in volume, f"{path} must be an emptyDir"
        assert not mount.get("readOnly")
        assert volume["emptyDir"].get("sizeLimit")
    for mount in container["volumeMounts"]:
        (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
        if "emptyDir" in volume:
            assert mount["mountPath"] in writable, f"an unexpected writable path {mount}"
        else:
            assert mount.get("readOnly") is True, mount
        assert "subPath" not in mount, "subPath mounts never see ConfigMap or Secret updates"
    assert all(set(v) & {"emptyDir", "configMap", "secret"} for v in pod["spec"]["volumes"])


def test_args_are_valid_flags_and_match_the_mounted_files(
    objects: list[Obj], clean_env: pytest.MonkeyPatch
) -> None:
    pod, container = _pod(objects), _container(objects)
    args = _serve_args(container, clean_env)

    assert args.policies == "/etc/csr-webhook/policies"
    _, volume = _mount(pod, container, args.policies)
    assert volume["configMap"]["name"] == POLICIES_CONFIGMAP
    assert "items" not in volume["configMap"], "every key of the ConfigMap is a policy file"
    one(objects, "ConfigMap", POLICIES_CONFIGMAP)

    assert args.tls_cert and args.tls_key
    cert, key = Path(args.tls_cert), Path(args.tls_key)
    assert cert.parent == key.parent
    _, volume = _mount(pod, container, str(cert.parent))
    secret = volume["secret"]
    names = {i["path"]: i["key"] for i in secret.get("items", [])} or {
        "tls.crt": "tls.crt",
        "tls.key": "tls.key",
    }
    assert names.get(cert.name) == "tls.crt"
    assert names.get(key.name) == "tls.key"
    assert secret["secretName"] == "csr-webhook-tls"
    assert secret.get("defaultMode", 0o644) & 0o007 == 0, "the key is not world-readable"
    if args.client_ca is not None:  # mTLS from the API server: the CA must be mounted too
        _mount(pod, container, str(Path(args.client_ca).parent))


def test_rbac_grants_the_webhook_exactly_what_its_caches_read(
    objects: list[Obj], clean_env: pytest.MonkeyPatch
) -> None:
    """The cluster caches (webhook/cluster/facts.py) list and watch Nodes and CSRs; the
    webhook's account may do that and nothing else. tests/e2e runs the server with a token of
    an account bound by exactly these objects, so they are proven sufficient there."""
    role = one(objects, "ClusterRole", "csr-webhook-cluster-facts")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
        {
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests"],
            "verbs": ["list", "watch"],
        },
    ]
    binding = one(objects, "ClusterRoleBinding", "csr-webhook-cluster-facts")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "csr-webhook-cluster-facts",
    }
    pod = _pod(objects)["spec"]
    account = one(objects, "ServiceAccount", pod["serviceAccountName"])
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]
    # Nothing else binds the webhook's account (the approver's Role and bindings name its own).
    subject = binding["subjects"][0]
    bound = [
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding") and subject in o.get("subjects", [])
    ]
    assert bound == [("ClusterRoleBinding", "csr-webhook-cluster-facts")]
    assert _serve_args(_container(objects), clean_env).cluster == "on"


def test_ports_line_up_with_the_server_defaults(
    objects: list[Obj], clean_env: pytest.MonkeyPatch
) -> None:
    container = _container(objects)
    defaults = build_parser().parse_args(["serve"])
    args = _serve_args(container, clean_env)
    https = int(args.bind.rpartition(":")[2])
    metrics = int(args.metrics_bind.rpartition(":")[2])
    assert (https, metrics) == (
        int(defaults.bind.rpartition(":")[2]),
        int(defaults.metrics_bind.rpartition(":")[2]),
    )
    assert args.metrics_bind.rpartition(":")[0] in ("0.0.0.0", "[::]"), "scrapable from outside"
    assert _port(container, "https") == https
    assert _port(container, "metrics") == metrics

    service = one(objects, "Service")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["https"]["port"] == 443
    assert _port(container, ports["https"]["targetPort"]) == https
    assert ports["metrics"]["port"] == metrics
    assert _port(container, ports["metrics"]["targetPort"]) == metrics
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "csr-webhook"


def test_probes(objects: list[Obj]) -> None:
    container = _container(objects)
    routes = _routes()
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert get["scheme"] == "HTTPS"
        assert _port(container, get["port"]) == 8443
        assert (path, "GET") in routes
        assert container[probe]["timeoutSeconds"] <= container[probe]["periodSeconds"]


def _routes() -> set[tuple[str, str]]:
    app = Flask("routes")
    app.register_blueprint(blueprint)
    return {
        (rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods or ()
    }


def test_pre_stop_sleep_fits_in_the_grace_period(objects: list[Obj]) -> None:
    from webhook.serving.server import GRACEFUL_TIMEOUT_SECONDS  # noqa: PLC0415 - gunicorn's, when needed

    pod, container = _pod(objects)["spec"], _container(objects)
    pre_stop = container["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        sleep = _seconds(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop["exec"]["command"]
        assert command[0] in ("sleep", "/bin/sleep") and len(command) == 2, command
        sleep = _seconds(command[1])
    grace = pod["terminationGracePeriodSeconds"]
    assert 0 < sleep < grace
    assert sleep + GRACEFUL_TIMEOUT_SECONDS < grace, "in-flight reviews could be cut off"


def test_resources_are_requested_and_limited(objects: list[Obj]) -> None:
    resources = _container(objects)["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), kind
    assert _cpu(resources["requests"]["cpu"]) <= _cpu(resources["limits"]["cpu"])
    assert _memory(resources["requests"]["memory"]) <= _memory(resources["limits"]["memory"])
    # Memory-backed emptyDirs count against the memory limit.
    volumes = _pod(objects)["spec"]["volumes"]
    in_memory = sum(
        _memory(v["emptyDir"]["sizeLimit"])
        for v in volumes
        if v.get("emptyDir", {}).get("medium") == "Memory"
    )
    assert in_memory < _memory(resources["limits"]["memory"]) // 4


# --- the policies ConfigMap -----------------------------------------------------------------


def _policy_files() -> list[Path]:
    files = sorted(p for p in POLICIES.iterdir() if p.is_file() and is_policy_file(p))
    assert files, "policies/ has no policy files"
    return files


def test_policies_configmap_holds_every_policy_file() -> None:
    config_map = one(rendered("base"), "ConfigMap", POLICIES_CONFIGMAP)
    # The policy files and the files they name (issuance.caBundleFile).
    expected = {p.name: p.read_text() for p in configmap_files(POLICIES)}
    assert {p.name for p in _policy_files()} <= set(expected)
    assert set(config_map["data"]) == set(expected)
    assert not any(name.endswith((".test.yaml", ".test.yml")) for name in config_map["data"])
    for name, text in expected.items():
        assert config_map["data"][name] == text, f"{name} differs: run `make manifests-policies`"


def test_generated_policy_directory_is_in_sync() -> None:
    stale = "manifests/base/policies is stale: run `make manifests-policies`"
    expected = {p.name for p in configmap_files(POLICIES)}
    assert "kustomization.yaml" not in expected
    present = {p.name for p in GENERATED_POLICIES.iterdir()}
    assert present == expected | {"kustomization.yaml"}, stale
    for name in expected:
        assert (GENERATED_POLICIES / name).read_bytes() == (POLICIES / name).read_bytes(), stale
    for path in [*GENERATED_POLICIES.iterdir(), GENERATED_POLICIES]:
        assert not path.is_symlink(), "kustomize refuses symlinks that leave its directory"


def test_policies_configmap_is_a_valid_policy_set(tmp_path: Path) -> None:
    config_map = one(rendered("base"), "ConfigMap", POLICIES_CONFIGMAP)
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text)
    result = load_policies([tmp_path])
    assert not result.errors, [str(e) for e in result.errors]
    assert result.policy_set is not None and result.policy_set.policies


def test_policies_configmap_fits_in_etcd() -> None:
    config_map = one(rendered("base"), "ConfigMap", POLICIES_CONFIGMAP)
    assert sum(len(k) + len(v.encode()) for k, v in config_map["data"].items()) < 1_000_000


# --- the webhook configurations -------------------------------------------------------------


def _hooks(objects: list[Obj], kind: str) -> list[Obj]:
    hooks = one(objects, kind, "csr-webhook")["webhooks"]
    assert len(hooks) == 1
    return list(hooks)


PCR_RESOURCES = {"podcertificaterequests", "podcertificaterequests/status"}


@pytest.mark.parametrize(
    ("kind", "path", "operations", "resources", "pod_resources"),
    [
        (
            "ValidatingWebhookConfiguration",
            "/validate",
            {"CREATE", "UPDATE"},
            CSR_RESOURCES,
            PCR_RESOURCES,
        ),
        # Both configurations register PodCertificateRequests and their /status (issue 16).
        (
            "MutatingWebhookConfiguration",
            "/mutate",
            {"CREATE"},
            {"certificatesigningrequests"},
            PCR_RESOURCES,
        ),
    ],
)
def test_webhook_configuration(  # noqa: PLR0917 - one parametrized case
    objects: list[Obj],
    kind: str,
    path: str,
    operations: set[str],
    resources: set[str],
    pod_resources: set[str],
) -> None:
    service = one(objects, "Service")
    https_port = {p["name"]: p["port"] for p in service["spec"]["ports"]}["https"]
    for hook in _hooks(objects, kind):
        labels = hook["name"].split(".")
        assert len(labels) >= 3, "the API server requires >= 3 dot-separated segments"
        assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", label) for label in labels)
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["failurePolicy"] == "Fail"
        assert 1 <= hook["timeoutSeconds"] <= 5
        assert hook["matchPolicy"] == "Equivalent"
        # CSRs are cluster-scoped (a selector exempts none); a PCR in any namespace, the
        # webhook's own included, must be checked.
        assert "namespaceSelector" not in hook
        assert "objectSelector" not in hook, "a label on a CSR must not bypass the policy"
        reference = hook["clientConfig"]["service"]
        assert "url" not in hook["clientConfig"]
        assert reference["name"] == service["metadata"]["name"]
        assert reference["namespace"] == service["metadata"]["namespace"]
        assert reference["port"] == https_port
        assert reference["path"] == path
        assert (path, "POST") in _routes()
        rule, pod_rule = hook["rules"]
        assert rule["apiGroups"] == ["certificates.k8s.io"]
        assert rule["apiVersions"] == ["v1"]
        assert set(rule["operations"]) == operations
        assert set(rule["resources"]) == resources
        assert rule.get("scope", "*") in ("Cluster", "*")
        assert pod_rule["apiGroups"] == ["certificates.k8s.io"]
        # v1beta1 objects arrive as themselves, with pkixPublicKey and proofOfPossession.
        assert pod_rule["apiVersions"] == ["v1", "v1beta1"]
        assert set(pod_rule["operations"]) == {"CREATE", "UPDATE"}
        assert set(pod_rule["resources"]) == pod_resources
        assert pod_rule["scope"] == "Namespaced"
        if kind == "MutatingWebhookConfiguration":
            assert hook["reinvocationPolicy"] == "IfNeeded"


def test_base_has_a_ca_bundle_placeholder_that_cannot_be_applied_by_mistake() -> None:
    for kind in WEBHOOK_CONFIGURATIONS:
        for hook in _hooks(rendered("base"), kind):
            placeholder = hook["clientConfig"]["caBundle"]
            assert placeholder == "REPLACE_WITH_BASE64_CA_BUNDLE"
            with pytest.raises(binascii.Error):
                base64.b64decode(placeholder, validate=True)
    assert "REPLACE_WITH_BASE64_CA_BUNDLE" in (ROOT / "docs" / "deploy.md").read_text()


# --- the cert-manager overlay ---------------------------------------------------------------


def test_cert_manager_chain_issues_the_mounted_serving_certificate() -> None:
    objects = rendered("cert-manager")
    issuers = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Issuer"}
    certificates = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Certificate"}
    (self_signed,) = [n for n, o in issuers.items() if "selfSigned" in o["spec"]]
    (ca_issuer,) = [n for n, o in issuers.items() if "ca" in o["spec"]]
    (ca,) = [c for c in certificates.values() if c["spec"].get("isCA")]
    assert ca["spec"]["issuerRef"]["name"] == self_signed
    assert ca["spec"]["issuerRef"].get("kind", "Issuer") == "Issuer"
    assert issuers[ca_issuer]["spec"]["ca"]["secretName"] == ca["spec"]["secretName"]

    (serving,) = [c for c in certificates.values() if not c["spec"].get("isCA")]
    assert serving["spec"]["issuerRef"]["name"] == ca_issuer
    assert serving["spec"]["issuerRef"].get("kind", "Issuer") == "Issuer"
    service = one(objects, "Service")
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert host == "csr-webhook.csr-webhook.svc"
    assert set(serving["spec"]["dnsNames"]) == {host, f"{host}.cluster.local"}
    assert "server auth" in serving["spec"]["usages"]
    assert serving["spec"].get("isCA", False) is False

    secrets = [v["secret"]["secretName"] for v in _pod(objects)["spec"]["volumes"] if "secret" in v]
    assert secrets == [serving["spec"]["secretName"]]

    injected = f"{serving['metadata']['namespace']}/{serving['metadata']['name']}"
    for kind in WEBHOOK_CONFIGURATIONS:
        configuration = one(objects, kind, "csr-webhook")
        annotations = configuration["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == injected
        for hook in configuration["webhooks"]:
            assert "caBundle" not in hook["clientConfig"], "cainjector owns the caBundle"


def test_cert_manager_overlay_changes_only_the_webhook_configurations() -> None:
    base = {identity(o): o for o in rendered("base")}
    overlay = {identity(o): o for o in rendered("cert-manager")}
    assert set(base) <= set(overlay)
    for key, obj in base.items():
        if key[1] not in WEBHOOK_CONFIGURATIONS:
            assert overlay[key] == obj, key
    assert {k[1] for k in set(overlay) - set(base)} == {"Issuer", "Certificate"}


def test_cert_manager_overlay_is_the_base_with_its_json_patch_applied() -> None:
    """Each webhook configuration is the base's with inject-ca.yaml applied, as RFC 6902 says:
    kustomize applied the patch to both targets, and the patch applies as written (a `remove`
    of a member the base lacks would raise)."""
    operations = yaml.safe_load((MANIFESTS / "cert-manager" / "inject-ca.yaml").read_text())
    assert isinstance(operations, list), "inject-ca.yaml is a JSON patch (a list of operations)"
    for kind in WEBHOOK_CONFIGURATIONS:
        base = one(rendered("base"), kind, "csr-webhook")
        expected = jsonpatch.apply_patch(base, operations)
        assert expected != base, f"inject-ca.yaml changes nothing in the {kind}"
        assert one(rendered("cert-manager"), kind, "csr-webhook") == expected, kind


# --- the monitoring overlay against the base ------------------------------------------------


def test_service_monitor_selects_the_service_and_its_metrics_port() -> None:
    service = one(rendered("base"), "Service")
    monitor = one(rendered("monitoring"), "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    names = monitor["spec"].get("namespaceSelector", {}).get("matchNames", [NAMESPACE])
    assert service["metadata"]["namespace"] in names
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint.get("scheme", "http") == "http", "/metrics is plain HTTP"
