"""Credentials for the Kubernetes API: a kubeconfig file, or the pod's service account.

connect() returns a kubernetes.client.ApiClient or raises CredentialsError naming what is
missing or broken; it reads files and nothing else (no request reaches the API here).
"""

from __future__ import annotations

import os
from typing import Any

import kubernetes.client
import kubernetes.config
from kubernetes.config.config_exception import ConfigException

from webhook.errors import CredentialsError

# The loaders carry no annotations in every version pyproject.toml allows.
_config: Any = kubernetes.config

# Where the kubelet mounts the service account (the in-cluster loader reads these too).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def in_cluster() -> bool:
    """The process runs in a pod whose API server it can find (KUBERNETES_SERVICE_HOST)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def connect(kubeconfig: str | None) -> Any:
    """An ApiClient for `kubeconfig` (its current context), or, with None, for the pod's
    service account. In-cluster, the client re-reads the projected token file before it
    expires (kubernetes.config.incluster_config sets a refresh hook that reads it again each
    minute), so a rotated token is used without a restart."""
    if kubeconfig is not None:
        return _from_kubeconfig(kubeconfig)
    if not in_cluster():
        raise CredentialsError(
            "no cluster credentials: give --kubeconfig FILE, or run in a pod "
            "(KUBERNETES_SERVICE_HOST is not set)"
        )
    configuration = kubernetes.client.Configuration()
    try:
        _config.load_incluster_config(client_configuration=configuration)
    except (ConfigException, OSError) as error:
        raise CredentialsError(
            f"in-cluster credentials ({SERVICE_ACCOUNT_DIR}) cannot be used: {error}"
        ) from None
    return kubernetes.client.ApiClient(configuration)


def _from_kubeconfig(path: str) -> Any:
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as error:
        raise CredentialsError(
            f"cannot read kubeconfig {path}: {error.strerror or error}"
        ) from None
    try:
        return _config.new_client_from_config(config_file=path)
    # The loader raises ConfigException for what it checks, and a YAML, Key or TypeError for
    # a file of the wrong shape: every one of them means "this kubeconfig cannot be used".
    except Exception as error:
        raise CredentialsError(f"kubeconfig {path} cannot be used: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
