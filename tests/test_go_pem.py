"""Differential test of PEM framing against Go's encoding/pem: webhook/x509/pem.py must find the
blocks that repeated pem.Decode calls find (the API server reads spec.request and
status.certificate with it), on well-formed input and on a fixed-seed corpus of damaged PEM
text: extra BEGIN lines, missing or mismatched END lines, headers, junk around blocks.
Needs Go (marker `go`, run by `make e2e`)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests import go_x509
from tests.builders import build_csr
from webhook.x509.pem import decode_pem_blocks

pytestmark = pytest.mark.go

BODY = b"MIIBAjCBqAIBADAPMQ0wCwYDVQQDDARhbGljZTBZMBMGByqGSM49AgEGCCqGSM49\nAwEHA0IABA==\n"
PIECES = (
    b"-----BEGIN CERTIFICATE REQUEST-----\n",
    b"-----BEGIN CERTIFICATE-----\n",
    b"-----BEGIN A-----\n",
    b"-----BEGIN ",
    b"-----END CERTIFICATE REQUEST-----\n",
    b"-----END CERTIFICATE-----\n",
    b"-----END A-----\n",
    b"-----END ",
    b"Proc-Type: 4,ENCRYPTED\n",
    b"Key: value\n\n",
    b"\n",
    b"\r\n",
    b"junk ",
    b"  \t",
    b"-----",
    BODY,
    b"AAAA\n",
    b"AA==\n",
    b"A\n",
    b"-----BEGIN A-----\n" + BODY + b"-----END A-----\n",
    b"-----BEGIN A-----\nKey: value\n\n" + BODY + b"-----END A-----\n",
)


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return go_x509.build(tmp_path_factory.mktemp("gox509-pem"))
    except go_x509.GoUnavailableError as exc:
        pytest.fail(str(exc))


def ours(data: bytes) -> list[dict[str, Any]]:
    return [
        {"type": b.type, "headers": dict(b.headers), "body": b.body.hex()}
        for b in decode_pem_blocks(data)
    ]


def corpus() -> list[bytes]:
    rng = random.Random(20261201)
    samples = [build_csr(common_name="alice"), build_csr(common_name="bob") * 2]
    for _ in range(4000):
        samples.append(b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14))))
    return samples


def test_pem_blocks_are_the_ones_go_finds(go_binary: Path) -> None:
    samples = corpus()
    views = go_x509.go_views(go_binary, samples, pem_only=True)
    found = 0
    for data, view in zip(samples, views, strict=True):
        assert ours(data) == view["blocks"], data
        found += bool(view["blocks"])
    assert found > 1000, f"only {found} samples held a block: the corpus is too tame"


def test_many_begin_lines_before_one_end_are_read_in_linear_time(go_binary: Path) -> None:
    """The shape of CVE-2025-61723 (Go's own quadratic PEM scan): Go and we agree on it."""
    data = b"-----BEGIN A-----\n" * 20_000 + b"-----END A-----\n"
    (view,) = go_x509.go_views(go_binary, [data], pem_only=True)
    assert ours(data) == view["blocks"]
