"""Shared fixtures: policy directories, the app, and a test client that holds every
webhook response to the API server's rules (tests/contract.py)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings

from tests import go_x509
from tests.contract import check_admission_response, check_error_body
from tests.observed_codes import pytest_configure, pytest_sessionfinish  # noqa: F401 - hooks
from webhook.policy.loader import load_policies
from webhook.policy.schema import KNOWN_USAGES, SUBJECT_ATTRIBUTES
from webhook.serving import logs
from webhook.serving.app import create_app
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings

# Shared, noisy machines: no per-example deadline and no "too slow" health check; example
# counts stay as each test sets them.
settings.register_profile(
    "csr-webhook", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("csr-webhook")

BASIC_POLICY = """
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: example}
spec:
  signerNames: ["example.com/signer"]
  rules:
    - name: clients
      requesters: {groups: ["system:authenticated"]}
      allowed:
        subject:
          commonName: {values: ["*"], required: true}
        usages: ["digital signature", "client auth"]
"""


def permissive_policy(name: str, signer: str, constraints: str = "") -> str:
    """A policy whose one rule allows every value of every kind: a parse or structure problem
    is then the only reason to deny. `constraints` is YAML indented under the rule."""
    subject = "\n".join(f'          {attr}: {{values: ["*"]}}' for attr in SUBJECT_ATTRIBUTES)
    usages = ", ".join(f'"{usage}"' for usage in KNOWN_USAGES)
    return f"""
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {{name: {name}}}
spec:
  signerNames: ["{signer}"]
  rules:
    - name: anything
      allowed:
        subject:
{subject}
        dnsNames: {{values: ["**"], allowWildcardNames: true}}
        ipAddresses: {{values: ["0.0.0.0/0", "::/0"]}}
        uris:
          values: ["https://**/**", "http://**/**", "spiffe://**/**", "https://**", "http://**"]
        emailAddresses: {{values: ["*@**"]}}
        usages: [{usages}]
        isCA: true
{constraints}"""


class ContractClient(FlaskClient):
    """Checks every /validate and /mutate answer against the API server's response rules."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "")
        endpoint = path.split("?")[0]
        if endpoint in ("/validate", "/mutate"):
            body = response.get_json(silent=True)
            if response.status_code == 200:
                sent = kwargs["json"] if "json" in kwargs else json.loads(kwargs["data"])
                check_admission_response(sent, body, mutating=endpoint == "/mutate")
            else:
                check_error_body(response.status_code, body)
        return response


def write_policies(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name.replace("__", ".")).write_text(textwrap.dedent(text))
    return directory


MakeApp = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Path) -> MakeApp:
    def build(policies: dict[str, str] | None = None, **settings: Any) -> Flask:
        directory = write_policies(
            tmp_path / "policies",
            **(policies if policies is not None else {"example.yaml": BASIC_POLICY}),
        )
        result = load_policies([directory])
        assert result.policy_set is not None, [str(p) for p in result.problems]
        app = create_app(
            Settings(policies=directory, **settings), PolicyStore(directory, result.policy_set)
        )
        app.test_client_class = ContractClient
        return app

    return build


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/gox509 built with the machine's Go, for the tests marked `go`: without Go they
    fail, they do not skip."""
    try:
        return go_x509.build(tmp_path_factory.mktemp("gox509"))
    except go_x509.GoUnavailableError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(autouse=True)
def _decision_log_put_back() -> Any:
    """Every test leaves the decision log as it found it: a test (or a bench run, or an
    in-process serve) that configured it unpropagated would hide every later test's decision
    record from caplog under pytest 6.2 (make test-min)."""
    with logs.decision_log_kept():
        yield
