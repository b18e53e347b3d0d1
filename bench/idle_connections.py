"""Latency of one review while many idle TCP and TLS connections are held open against a
real server with one worker and two threads.

Run: .venv/bin/python bench/idle_connections.py
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import RunningServer, review_over, running_server

REVIEW = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")


def review_ms(server: RunningServer) -> float:
    connection = server.connection()
    started = time.perf_counter()
    review_over(connection, REVIEW)
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed * 1000


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="idle-"))
    policies = write_policies(tmp / "policies", **{"example.yaml": BASIC_POLICY})
    with running_server(tmp, policies, "--workers", "1", "--threads", "2") as server:
        print(f"no idle connections: {min(review_ms(server) for _ in range(5)):.1f} ms")
        for raw_count, tls_count in ((200, 0), (0, 50), (800, 100)):
            idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(raw_count)]
            for _ in range(tls_count):
                raw = socket.create_connection(("127.0.0.1", server.port))
                idle.append(server.tls_context().wrap_socket(raw, server_hostname="localhost"))
            time.sleep(0.5)
            first, second = review_ms(server), review_ms(server)
            print(
                f"{raw_count} idle TCP + {tls_count} idle TLS: {first:.1f} ms, then {second:.1f} ms"
            )
            for sock in idle:
                sock.close()
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
