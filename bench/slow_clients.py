"""Latency of legitimate reviews while slow and idle clients attack a real server with the
default `--workers 2 --threads 4`: 24 half-handshake clients, 24 slowloris clients (one header
byte per second), 2000 idle TCP connections, 24 clients that never read their 2 MB answers
(three pipelined each), each for --seconds (30 by default), one attack at a time. Reviews run
one after the other, alternating a fresh connection (TCP + TLS + request, all timed) and one
kept-alive connection. The attack code is tests/slow_clients.py.

Then (--memory) the workers' resident memory per idle connection: 2000 idle TCP connections,
then 1000 TLS connections with the handshake done and no request.

Run: .venv/bin/python -m bench.slow_clients [--seconds 30] [--attack slowloris ...] [--memory]
     .venv/bin/python -m bench.slow_clients --non-readers  (that attack only)
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import RunningServer, running_server, worker_pids
from tests.slow_clients import ATTACKS, legitimate_reviews

REVIEW = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")


def _resident_kib(server: RunningServer) -> int:
    total = 0
    for pid in worker_pids(server):
        with open(f"/proc/{pid}/status") as status:
            total += int(next(line for line in status if line.startswith("VmRSS:")).split()[1])
    return total


def memory_per_connection(server: RunningServer) -> None:
    context = server.tls_context()
    for kind, count in (("idle TCP", 2000), ("idle TLS", 1000)):
        time.sleep(1.0)
        before = _resident_kib(server)
        held: list[socket.socket] = []
        for _ in range(count):
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            held.append(
                context.wrap_socket(raw, server_hostname="localhost") if kind == "idle TLS" else raw
            )
        time.sleep(1.0)
        grown = _resident_kib(server) - before
        print(
            f"{count} {kind} connections: workers' RSS +{grown} KiB, {grown / count:.1f} KiB each"
        )
        for sock in held:
            sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_clients", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--attack", action="append", choices=sorted(ATTACKS))
    parser.add_argument("--memory", action="store_true", help="measure memory per connection")
    parser.add_argument(
        "--non-readers", action="store_true", help="only the attack of clients that never read"
    )
    args = parser.parse_args(argv)
    if args.non_readers:
        args.attack = [*(args.attack or []), "non-readers"]
    tmp = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    policies = write_policies(tmp / "policies", **{"example.yaml": BASIC_POLICY})
    worst = 0.0
    try:
        with running_server(tmp, policies) as server:
            quiet = legitimate_reviews(server, REVIEW, 3.0)
            print(f"{'no attack':>15}: {quiet.summary()}")
            for name in args.attack or sorted(ATTACKS):
                with ATTACKS[name](server) as attacker:
                    time.sleep(1.0)
                    result = legitimate_reviews(server, REVIEW, args.seconds)
                values = sorted(result.all())
                p99 = values[int(len(values) * 0.99)] if values else float("nan")
                print(
                    f"{name:>15}: {result.summary()}; p99 {p99 * 1000:.1f} ms; "
                    f"attacker re-opened {attacker.reopened} connections"
                )
                for failure in result.failures[:5]:
                    print(f"{'':>17}{failure}")
                if result.failures:
                    worst = float("inf")
                worst = max([worst, *values])
            if args.memory:
                memory_per_connection(server)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"slowest review: {worst * 1000:.1f} ms ({'OK' if worst < 1.0 else 'over 1 s'})")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
