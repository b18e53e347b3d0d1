"""The Go side of the differential tests: build tests/gox509 with the machine's Go, run CSRs
through it, and put the webhook's own reading of a CSR in the same canonical shape.

Go's crypto/x509 is what kube-apiserver (ParseCSR, CheckSignature) and kube-controller-manager's
signer read spec.request with; `go_view` is that reading and `webhook_view` is ours.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from webhook.x509.csr import ParsedCSR

GO_SOURCE = Path(__file__).parent / "gox509"

# Our signature algorithm names (webhook.x509.oids.SIGNATURE_NAMES) -> Go's x509.SignatureAlgorithm
# String(). Go has no name for the others (SHA-224, SHA-3, Ed448): to Go they are unknown.
_GO_SIGNATURES = {
    ("md5WithRSAEncryption", "md5"): "MD5-RSA",
    ("sha1WithRSAEncryption", "sha1"): "SHA1-RSA",
    ("sha1WithRSA", "sha1"): "SHA1-RSA",
    ("sha256WithRSAEncryption", "sha256"): "SHA256-RSA",
    ("sha384WithRSAEncryption", "sha384"): "SHA384-RSA",
    ("sha512WithRSAEncryption", "sha512"): "SHA512-RSA",
    ("rsassaPss", "sha256"): "SHA256-RSAPSS",
    ("rsassaPss", "sha384"): "SHA384-RSAPSS",
    ("rsassaPss", "sha512"): "SHA512-RSAPSS",
    ("ecdsa-with-SHA1", "sha1"): "ECDSA-SHA1",
    ("ecdsa-with-SHA256", "sha256"): "ECDSA-SHA256",
    ("ecdsa-with-SHA384", "sha384"): "ECDSA-SHA384",
    ("ecdsa-with-SHA512", "sha512"): "ECDSA-SHA512",
    ("dsaWithSHA1", "sha1"): "DSA-SHA1",
    ("dsa_with_SHA256", "sha256"): "DSA-SHA256",
    ("ED25519", None): "Ed25519",
}


class GoUnavailableError(RuntimeError):
    """No usable `go` command: the Go tier cannot run, and must fail rather than skip."""


def build(out_dir: Path) -> Path:
    """`go build` tests/gox509 into `out_dir` (never into the repository); the binary's path."""
    go = shutil.which("go")
    if go is None:
        raise GoUnavailableError(
            "`go` is not on PATH; the `go` test tier (make e2e) needs Go 1.22+"
        )
    binary = out_dir / "gox509"
    env = {
        **os.environ,
        "GOTOOLCHAIN": "local",  # never download a toolchain
        "GOPROXY": "off",  # stdlib only: nothing to fetch
        "GOFLAGS": "-mod=mod",
        "GOWORK": "off",
    }
    result = subprocess.run(
        [go, "build", "-trimpath", "-o", str(binary), "."],
        cwd=GO_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise GoUnavailableError(f"go build failed:\n{result.stderr}")
    return binary


def go_views(
    binary: Path, requests: Sequence[bytes], *, pem_only: bool = False
) -> list[dict[str, Any]]:
    """Go's view of each spec.request (PEM bytes), in order, from one process; with
    `pem_only`, just the PEM blocks that repeated pem.Decode calls find."""
    lines = "".join(
        json.dumps({"id": str(i), "request": base64.b64encode(r).decode(), "pem": pem_only}) + "\n"
        for i, r in enumerate(requests)
    )
    result = subprocess.run([str(binary)], input=lines, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    views = [json.loads(line) for line in result.stdout.splitlines()]
    assert [v["id"] for v in views] == [str(i) for i in range(len(requests))]
    return views


def go_rejects(view: dict[str, Any]) -> str | None:
    """Why kube-apiserver would refuse this CSR outright (parse or signature), or None."""
    return view.get("parse_error") or view.get("signature_error")


def comparable_go_view(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in ("id", "parse_error", "signature_error")}


def webhook_view(csr: ParsedCSR) -> dict[str, Any]:
    """Our ParsedCSR in the shape of tests/gox509's output."""
    key: dict[str, Any] = {"algorithm": csr.key.type, "der": csr.public_key_der.hex()}
    if csr.key.type in ("rsa", "ecdsa"):
        key["bits"] = csr.key.bits
    if csr.key.exponent is not None:
        key["exponent"] = csr.key.exponent
    if csr.key.curve is not None:
        key["curve"] = csr.key.curve
    common_names = csr.subject_values("commonName")
    return {
        "der": csr.der.hex(),
        "subject": [{"oid": a.oid, "value": a.value, "type": "string"} for a in csr.subject],
        "common_name": common_names[-1] if common_names else "",
        "dns_names": list(csr.dns_names),
        "email_addresses": list(csr.email_addresses),
        "ip_addresses": [ipaddress.ip_address(ip).packed.hex() for ip in csr.ip_addresses],
        "uris": [_lower_scheme(uri) for uri in csr.uris],
        "extensions": [
            {"oid": e.oid, "critical": e.critical, "value": e.value.hex()} for e in csr.extensions
        ],
        "key": key,
        "signature_algorithm": _GO_SIGNATURES.get(
            (csr.signature_algorithm, csr.signature_hash), ""
        ),
    }


def _lower_scheme(uri: str) -> str:
    """The URI as it is judged: URI patterns compare the scheme case-insensitively (it is
    lowercased before matching), as Go's net/url lowercases it when it parses the SAN."""
    scheme, sep, rest = uri.partition(":")
    return scheme.lower() + sep + rest if sep else uri
