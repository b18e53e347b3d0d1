"""What a call of the review path costs alone and beside a thread that runs Python: a call that
releases the GIL (cryptography's signature check does) must win it back when it returns, and
beside a busy thread that takes up to the interpreter's switch interval (5 ms by default).

    python -m bench.gil_release [--calls N]

Prints, per call, µs alone and µs beside a busy thread. In a worker the busy threads are the
poller and the other pool threads; docs/performance.md ("Fourth pass") has the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import threading
import time
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def calls() -> dict[str, Callable[[], object]]:
    """The calls measured, each on a CSR made here (ECDSA P-256 and RSA-2048, SHA-256)."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(65537, 2048)
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    ec_der = builder.sign(ec_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    rsa_der = builder.sign(rsa_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return {
        "load_der_x509_csr": lambda: x509.load_der_x509_csr(ec_der),
        "public_key()": lambda: x509.load_der_x509_csr(ec_der).public_key(),
        "is_signature_valid (ECDSA P-256)": lambda: (
            x509.load_der_x509_csr(ec_der).is_signature_valid
        ),
        "is_signature_valid (RSA-2048)": lambda: x509.load_der_x509_csr(rsa_der).is_signature_valid,
        "hashlib.sha256 of the CSR": lambda: hashlib.sha256(ec_der).digest(),
    }


def _per_call_us(call: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - started) / count * 1e6


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        pass


def measure(count: int) -> list[dict[str, object]]:
    """[{call, alone_us, beside_busy_us}], `count` calls alone and `count` beside a busy thread."""
    rows: list[dict[str, object]] = []
    for name, call in calls().items():
        alone = _per_call_us(call, count)
        stop = threading.Event()

        busy = threading.Thread(target=_spin, args=(stop,), daemon=True)
        busy.start()
        try:
            beside = _per_call_us(call, count)
        finally:
            stop.set()
            busy.join()
        rows.append({"call": name, "alone_us": alone, "beside_busy_us": beside})
    return rows


def format_table(rows: Sequence[dict[str, object]]) -> str:
    lines = [f"{'call':36}{'alone us':>12}{'beside busy us':>16}"]
    for row in rows:
        lines.append(f"{row['call']!s:36}{row['alone_us']:12.1f}{row['beside_busy_us']:16.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gil_release", description=__doc__)
    parser.add_argument("--calls", type=int, default=50, help="calls per row (default 50)")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    print(f"switch interval {sys.getswitchinterval() * 1000:g} ms")
    print(format_table(measure(args.calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
