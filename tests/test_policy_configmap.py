"""A policy that names a file (`issuance.caBundleFile`) can be deployed: the file must sit
beside the policy file (a ConfigMap is one flat directory), `check` says which files each
policy needs, `make manifests-policies` carries them into the ConfigMap, and the overlay of
docs/deploy.md adds a team's policy with its CA. Rendered with the real `kubectl kustomize`;
the ConfigMap it renders, written to a directory, loads with `csr-webhook check`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.certs import self_signed_ca_pem
from tests.server import CLI
from tests.test_manifests import MANIFESTS, POLICIES, POLICIES_CONFIGMAP, one
from webhook.cli import main
from webhook.policy.loader import load_policies

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def team_policy(ca_file: str, name: str = "team-a") -> str:
    return f"""\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata:
  name: {name}
spec:
  signerNames: ["example.com/{name}"]
  rules:
    - name: clients
      requesters: {{groups: ["{name}"]}}
      allowed:
        subject:
          commonName: {{values: ["*"], required: true}}
        usages: ["client auth", "digital signature"]
  issuance:
    issuers: {{serviceAccounts: ["{name}/signer"]}}
    caBundleFile: {ca_file}
"""


def _der(pem: bytes) -> tuple[bytes, ...]:
    return tuple(c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(pem))


def _problems(directory: Path) -> list[str]:
    return [str(problem) for problem in load_policies([directory]).errors]


# --- the loader -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    ["../ca.pem", "ca/team-a.pem", "/etc/csr-webhook/ca.pem", "..", "team a.pem"],
)
def test_refuses_a_ca_bundle_file_that_is_not_a_file_name_beside_the_policy(
    tmp_path: Path, reference: str
) -> None:
    policies = tmp_path / "policies"
    (policies / "ca").mkdir(parents=True)
    for place in (tmp_path / "ca.pem", policies / "ca" / "team-a.pem"):
        place.write_bytes(self_signed_ca_pem())
    (policies / "team-a.yaml").write_text(team_policy(f'"{reference}"'))
    assert _problems(policies) == [
        f"{policies}/team-a.yaml:16: spec.issuance.caBundleFile: {reference!r} must be the name "
        "of a file beside the policy file (letters, digits, '-', '_' and '.'; no '/'): "
        "policies are mounted from a ConfigMap, one flat directory whose keys cannot hold a path"
    ]


def test_refuses_a_ca_bundle_file_that_is_a_symlink_out_of_the_policy_directory(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "elsewhere" / "ca.pem"
    outside.parent.mkdir()
    outside.write_bytes(self_signed_ca_pem())
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "team-a-ca.pem").symlink_to(outside)
    (policies / "team-a.yaml").write_text(team_policy("team-a-ca.pem"))
    assert _problems(policies) == [
        f"{policies}/team-a.yaml:16: spec.issuance.caBundleFile: cannot read "
        f"'{policies}/team-a-ca.pem': it is a symlink to '{outside}', outside the policy "
        f"directory '{policies}'"
    ]


def test_loads_a_ca_bundle_file_through_the_symlinks_of_a_configmap_mount(
    tmp_path: Path,
) -> None:
    """The kubelet's layout: each key a symlink to ..data/<key>, ..data a symlink to the
    timestamped directory that holds the files."""
    mount = tmp_path / "mount"
    timestamped = mount / "..2026_12_01_07_00_00.000000001"
    timestamped.mkdir(parents=True)
    pem = self_signed_ca_pem("team-a")
    (timestamped / "team-a-ca.pem").write_bytes(pem)
    (timestamped / "team-a.yaml").write_text(team_policy("team-a-ca.pem"))
    (mount / "..data").symlink_to(timestamped.name)
    for key in ("team-a-ca.pem", "team-a.yaml"):
        (mount / key).symlink_to(f"..data/{key}")
    result = load_policies([mount])
    assert result.policy_set is not None, [str(p) for p in result.problems]
    (policy,) = result.policy_set.policies
    assert policy.issuance.ca_certificates_der == _der(pem)
    assert result.needs == [("team-a", ("team-a-ca.pem",))]


def test_check_says_which_files_each_policy_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "team-a.yaml").write_text(team_policy("team-a-ca.pem"))
    (tmp_path / "team-a-ca.pem").write_bytes(self_signed_ca_pem())
    shutil.copy(POLICIES / "kubelet-serving.yaml", tmp_path)
    assert main(["check", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "policy 'team-a' needs: team-a-ca.pem\n"


# --- make manifests-policies ----------------------------------------------------------------


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed")
    return found


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


def _check_configmap(objects: list[dict[str, Any]], directory: Path) -> str:
    """Write the rendered policies ConfigMap to `directory` as the kubelet would mount it
    (flat, one file per key) and run `csr-webhook check` on it; its stdout."""
    config_map = one(objects, "ConfigMap", POLICIES_CONFIGMAP)
    directory.mkdir()
    for key, text in config_map["data"].items():
        (directory / key).write_text(text)
    result = subprocess.run(
        [str(CLI), "check", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _generate(source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """What `make manifests-policies` runs (its recipe is checked below)."""
    return subprocess.run(
        [sys.executable, "-m", "webhook.authoring.configmap", str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_make_manifests_policies_runs_the_generator() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nmanifests-policies:", 1)[1]
    command = recipe.split("\n\n", 1)[0]
    assert "-m webhook.authoring.configmap policies $(MANIFEST_POLICIES)" in command


def test_generated_configmap_carries_the_ca_file_and_loads_after_kustomize(
    tmp_path: Path,
) -> None:
    source = tmp_path / "policies"
    shutil.copytree(POLICIES, source)
    pem = self_signed_ca_pem("team-a")
    (source / "team-a.yaml").write_text(team_policy("team-a-ca.pem"))
    (source / "team-a-ca.pem").write_bytes(pem)
    manifests = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, manifests)
    generated = _generate(source, manifests / "base" / "policies")
    assert generated.returncode == 0, generated.stderr

    objects = _kustomize(manifests / "base")
    data = one(objects, "ConfigMap", POLICIES_CONFIGMAP)["data"]
    assert data["team-a-ca.pem"] == pem.decode()
    assert not any(key.endswith(".test.yaml") for key in data)
    output = _check_configmap(objects, tmp_path / "mounted")
    assert output == "policy 'team-a' needs: team-a-ca.pem\n"
    loaded = load_policies([tmp_path / "mounted"]).policy_set
    assert loaded is not None
    team = next(p for p in loaded.policies if p.name == "team-a")
    assert team.issuance.ca_certificates_der == _der(pem)


def test_generator_refuses_a_policy_directory_that_does_not_load(tmp_path: Path) -> None:
    source = tmp_path / "policies"
    source.mkdir()
    (source / "team-a.yaml").write_text(team_policy("team-a-ca.pem"))
    target = tmp_path / "generated"
    target.mkdir()
    (target / "kept.yaml").write_text("untouched\n")
    generated = _generate(source, target)
    assert generated.returncode == 1
    assert f"refusing to write {target}: {source} does not load as a policy set:" in (
        generated.stderr
    )
    assert "spec.issuance.caBundleFile: cannot read" in generated.stderr
    assert [p.name for p in target.iterdir()] == ["kept.yaml"]


# --- the overlay of docs/deploy.md ----------------------------------------------------------


def _doc_overlay() -> tuple[str, str]:
    """The overlay docs/deploy.md shows: its path and its text."""
    found = re.search(
        r"<!-- overlay: (\S+) -->\n```yaml\n(.*?)```", DEPLOY_DOC.read_text(), re.DOTALL
    )
    assert found, "docs/deploy.md has no <!-- overlay: ... --> block"
    return found.group(1), found.group(2)


def test_docs_overlay_adds_a_team_policy_and_its_ca_to_the_configmap(tmp_path: Path) -> None:
    relative, text = _doc_overlay()
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    overlay = (tmp_path / relative).parent
    files = yaml.safe_load(text)["configMapGenerator"][0]["files"]
    policy_file = next(f for f in files if f.endswith(".yaml"))
    ca_file = next(f for f in files if f.endswith(".pem"))
    pem = self_signed_ca_pem("team-a")
    (overlay / Path(policy_file).parent).mkdir(parents=True)
    (overlay / policy_file).write_text(team_policy(Path(ca_file).name))
    (overlay / ca_file).write_bytes(pem)
    (overlay / "kustomization.yaml").write_text(text)
    # The team's own directory loads as it will be mounted.
    assert main(["check", str((overlay / policy_file).parent)]) == 0

    objects = _kustomize(overlay)
    config_map = one(objects, "ConfigMap", POLICIES_CONFIGMAP)
    assert config_map["metadata"]["name"] == POLICIES_CONFIGMAP  # no hash: hot reload
    assert config_map["metadata"]["namespace"] == "csr-webhook"
    shipped = {p.name for p in POLICIES.iterdir() if not p.name.endswith(".test.yaml")}
    assert set(config_map["data"]) == shipped | {Path(policy_file).name, Path(ca_file).name}
    output = _check_configmap(objects, tmp_path / "mounted")
    assert output == f"policy 'team-a' needs: {Path(ca_file).name}\n"
    deployment = one(objects, "Deployment", "csr-webhook")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "policies", "configMap": {"name": POLICIES_CONFIGMAP}} in volumes
