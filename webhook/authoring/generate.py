"""CSRs and AdmissionReviews for PolicyTest cases, built as kube-apiserver would send them.

Private keys are generated at run time, cached in memory for one run and never serialised;
a malformed description raises `SpecError` with the path of the offending field.
"""

from __future__ import annotations

import base64
import copy
import datetime
import ipaddress
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from webhook import sankinds
from webhook.authoring.suite_schema import TEST_KEY_TYPES
from webhook.policy.schema import SUBJECT_ATTRIBUTES
from webhook.policy.source import PathKey
from webhook.sankinds import BY_KEY, SAN_KINDS

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
DEFAULT_KEY = "ecdsa-p256"  # the kubelet's default key
_Hash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512
_CURVES: dict[str, tuple[ec.EllipticCurve, _Hash]] = {
    "ecdsa-p256": (ec.SECP256R1(), hashes.SHA256()),
    "ecdsa-p384": (ec.SECP384R1(), hashes.SHA384()),
    "ecdsa-p521": (ec.SECP521R1(), hashes.SHA512()),
}
_NAME_OIDS = dict(
    zip(
        SUBJECT_ATTRIBUTES,
        (
            NameOID.COMMON_NAME,
            NameOID.ORGANIZATION_NAME,
            NameOID.ORGANIZATIONAL_UNIT_NAME,
            NameOID.COUNTRY_NAME,
            NameOID.LOCALITY_NAME,
            NameOID.STATE_OR_PROVINCE_NAME,
            NameOID.STREET_ADDRESS,
            NameOID.POSTAL_CODE,
            NameOID.SERIAL_NUMBER,
        ),
        strict=True,
    )
)
MAX_REQUEST_FILE = 65 * 1024  # spec.request may hold 64 KiB; a larger file is a mistake


class SpecError(ValueError):
    """A request description that cannot be turned into a CSR; `path` names the field."""

    def __init__(self, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A validated description of a CSR to generate; holds no key material."""

    key: str
    subject: x509.Name
    sans: tuple[x509.GeneralName, ...]


class KeyCache:
    """One private key per key type for the length of a run; memory only, never written."""

    def __init__(self) -> None:
        self._keys: dict[str, PrivateKey] = {}

    def get(self, key_type: str) -> PrivateKey:
        if key_type not in self._keys:
            self._keys[key_type] = _generate(key_type)
        return self._keys[key_type]


def _generate(key_type: str) -> PrivateKey:
    if key_type.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type][0])
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type!r}")


def parse_request_spec(raw: Mapping[str, Any], path: PathKey) -> RequestSpec:
    """Check a shape-validated `request:` description (subject values as lists, commonName a
    string); raises SpecError naming the field cryptography refused."""
    attributes = []
    for name, values in (raw.get("subject") or {}).items():
        listed = [values] if isinstance(values, str) else values
        for index, value in enumerate(listed):
            where = (*path, "subject", name, *(() if isinstance(values, str) else (index,)))
            try:
                attributes.append(x509.NameAttribute(_NAME_OIDS[name], value))
            except ValueError as exc:
                raise SpecError(where, str(exc)) from exc
    sans: list[x509.GeneralName] = []
    for kind in SAN_KINDS:
        for index, value in enumerate(raw.get(kind.key) or []):
            try:
                sans.append(general_name(kind.key, value))
            except ValueError as exc:
                raise SpecError((*path, kind.key, index), str(exc)) from exc
    key = str(raw.get("key", DEFAULT_KEY))
    if key not in TEST_KEY_TYPES:
        raise SpecError((*path, "key"), f"unknown key type {key!r}")
    return RequestSpec(key=key, subject=x509.Name(attributes), sans=tuple(sans))


def read_request_file(file: Path) -> bytes:
    """The bytes of a PEM file as given; judging them is the engine's job (raises SpecError)."""
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_REQUEST_FILE + 1)
    except OSError as exc:
        raise SpecError((), f"cannot read {str(file)!r}: {exc.strerror}") from exc
    if len(data) > MAX_REQUEST_FILE:
        raise SpecError((), f"{str(file)!r} is over {MAX_REQUEST_FILE} bytes")
    return data


def listify_subjects(document: dict[str, Any]) -> None:
    """In a PolicyTest document, subject attributes other than commonName may be one string:
    make each such string a one-item list before the shape is validated."""
    spec = document.get("spec")
    cases = spec.get("cases") if isinstance(spec, dict) else None
    for case in cases if isinstance(cases, list) else []:
        csr = case.get("csr") if isinstance(case, dict) else None
        request = csr.get("request") if isinstance(csr, dict) else None
        subject = request.get("subject") if isinstance(request, dict) else None
        if isinstance(subject, dict):
            for name, item in subject.items():
                if name != "commonName" and isinstance(item, str):
                    subject[name] = [item]


def general_name(key: str, value: str) -> x509.GeneralName:
    """The GeneralName of an entry under a SAN kind's key (`dnsNames`, `ipAddresses`, ...)."""
    kind = BY_KEY[key]
    if kind is sankinds.DNS:
        return x509.DNSName(value)
    if kind is sankinds.IP:
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
    if kind is sankinds.URI:
        return x509.UniformResourceIdentifier(value)
    if kind is sankinds.EMAIL:
        return x509.RFC822Name(value)
    raise ValueError(f"no GeneralName for SAN kind {key!r}")


def build_request_pem(spec: RequestSpec, keys: KeyCache) -> bytes:
    """Sign the described CSR as Go's x509.CreateCertificateRequest would: subject and a SAN
    extension only (the kubelet adds no key usage extensions)."""
    key = keys.get(spec.key)
    builder = x509.CertificateSigningRequestBuilder().subject_name(spec.subject)
    if spec.sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(spec.sans)), False)
    algorithm: _Hash | None = hashes.SHA256()
    if spec.key in _CURVES:
        algorithm = _CURVES[spec.key][1]
    elif spec.key == "ed25519":
        algorithm = None
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


# ---- AdmissionReviews (strategy.go PrepareForCreate / csrApprovalStrategy) --------------------


def user_info(username: str, groups: Sequence[str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "username": username,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, username)),
    }
    if groups:  # omitempty in the Go type
        info["groups"] = list(groups)
    return info


def stored_csr(  # noqa: PLR0917 - the fields of a CSR as created
    name: str,
    pem: bytes,
    signer_name: str,
    usages: Sequence[str],
    expiration_seconds: int | None,
    requester: Mapping[str, Any],
) -> dict[str, Any]:
    """The CSR after PrepareForCreate: spec identity = the authenticated requester, status {}."""
    spec: dict[str, Any] = {
        "request": base64.b64encode(pem).decode(),
        "signerName": signer_name,
        "usages": list(usages),
    }
    if expiration_seconds is not None:
        spec["expirationSeconds"] = expiration_seconds
    spec["username"] = requester["username"]
    if requester.get("uid"):  # omitempty, as in userInfo: client certificates carry none
        spec["uid"] = requester["uid"]
    if requester.get("groups"):
        spec["groups"] = list(requester["groups"])
    if requester.get("extra"):
        spec["extra"] = {key: list(values) for key, values in requester["extra"].items()}
    # No resourceVersion: a CREATE's object is not stored yet (as kube-apiserver v1.37 sends it).
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {
            "name": name,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": _now(),
        },
        "spec": spec,
        "status": {},
    }


def create_review(csr: dict[str, Any], requester: Mapping[str, Any]) -> dict[str, Any]:
    return _review(csr, None, "CREATE", "", requester)


def approval_review(
    csr: dict[str, Any], condition_type: str, actor: Mapping[str, Any]
) -> dict[str, Any]:
    """PUT /approval adding one condition with status True; timestamps filled by the strategy
    (populateConditionTimestamps); spec and certificate unchanged."""
    stored = _stored(csr)
    return _review(with_condition(stored, condition_type), stored, "UPDATE", "approval", actor)


def _stored(csr: dict[str, Any]) -> dict[str, Any]:
    """The CSR as the API server holds it. An update's two objects both show the stored
    resourceVersion: the new one is assigned on write, after admission (as kube-apiserver
    v1.37 sends it)."""
    stored = copy.deepcopy(csr)
    stored["metadata"].setdefault("resourceVersion", "1")
    return stored


def with_condition(csr: dict[str, Any], condition_type: str) -> dict[str, Any]:
    """The CSR after an /approval update added an Approved or Denied condition."""
    new = _stored(csr)
    now = _now()
    verb = "approved" if condition_type == "Approved" else "denied"
    new["status"] = {
        "conditions": [
            *csr["status"].get("conditions", []),
            {
                "type": condition_type,
                "status": "True",
                "reason": f"PolicyTest{condition_type}",
                "message": f"This CSR was {verb} by a csr-webhook policy test.",
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            },
        ]
    }
    return new


def issue_review(
    approved: dict[str, Any], certificate_pem: bytes, signer: Mapping[str, Any]
) -> dict[str, Any]:
    """PUT /status by the signer: the approved CSR gains status.certificate, nothing else."""
    stored = _stored(approved)
    new = copy.deepcopy(stored)
    new["status"]["certificate"] = base64.b64encode(certificate_pem).decode()
    return _review(new, stored, "UPDATE", "status", signer)


def _review(
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    operation: str,
    sub_resource: str,
    caller: Mapping[str, Any],
) -> dict[str, Any]:
    kind = {"group": "certificates.k8s.io", "version": "v1", "kind": "CertificateSigningRequest"}
    resource = {"group": kind["group"], "version": "v1", "resource": "certificatesigningrequests"}
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": obj["metadata"]["name"],
        "operation": operation,
        "userInfo": dict(caller),
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {
            "apiVersion": "meta.k8s.io/v1",
            "kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions",
        },
    }
    if sub_resource:
        request["subResource"] = sub_resource
        request["requestSubResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
