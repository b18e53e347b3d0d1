"""What a call of the review path costs alone and beside a thread that runs Python: a call that
releases the GIL (cryptography's signature check does) must win it back when it returns, and
beside a busy thread that takes up to the interpreter's switch interval (5 ms by default).

    python -m bench.gil_release [--calls N]

Prints, per call, the median µs alone and beside a busy thread, and the share of calls beside
it that took over 1 ms: a call that released the GIL either returns to find it free or waits
out the interval, so a mean would hide which. In a worker the threads that may hold the GIL
then are the other pool threads and, between its waits, the poller; docs/performance.md
("Fourth pass") has the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SLOW_US = 1000.0  # a call beside the busy thread that took longer waited for the GIL


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


def _each_call_us(call: Callable[[], object], count: int) -> list[float]:
    times: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e6)
    return times


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        pass


def measure(count: int) -> list[dict[str, object]]:
    """[{call, alone_us, beside_busy_us, slow_share}]: medians of `count` calls alone and
    `count` beside a busy thread, and the share of the latter that took over SLOW_US."""
    rows: list[dict[str, object]] = []
    for name, call in calls().items():
        alone = _each_call_us(call, count)
        stop = threading.Event()
        busy = threading.Thread(target=_spin, args=(stop,))
        busy.start()
        try:
            beside = _each_call_us(call, count)
        finally:
            stop.set()
            busy.join()
        rows.append(
            {
                "call": name,
                "alone_us": statistics.median(alone),
                "beside_busy_us": statistics.median(beside),
                "slow_share": sum(t > SLOW_US for t in beside) / count,
            }
        )
    return rows


def format_table(rows: Sequence[dict[str, object]]) -> str:
    lines = [f"{'call (median us)':36}{'alone':>10}{'beside busy':>13}{'over 1 ms':>11}"]
    for row in rows:
        lines.append(
            f"{row['call']!s:36}{row['alone_us']:10.1f}{row['beside_busy_us']:13.1f}"
            f"{row['slow_share']:11.0%}"
        )
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
