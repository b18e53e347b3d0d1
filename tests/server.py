"""Start a real `csr-webhook serve` process over TLS for tests, and talk to it.

Which worker holds a connection is read from the kernel: the server end's inode in
/proc/net/tcp{,6} (matched by the client's port) against the socket inodes in each worker's
/proc/<pid>/fd."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.contract import check_admission_response, check_error_body
from webhook.serving.devcert import generate_dev_certificate

CLI = Path(sys.executable).parent / "csr-webhook"
# Runs the server under a file-descriptor limit (soft and hard, as a container's), same pid.
LIMIT_FDS = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    ca_file: Path
    log_file: Path
    client_cert: tuple[Path, Path] | None = None

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def connection(self) -> http.client.HTTPSConnection:
        """A verified connection, presenting the client certificate when mTLS is on."""
        context = self.tls_context()
        if self.client_cert is not None:
            context.load_cert_chain(*self.client_cert)
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=10)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def worker_pids(server: RunningServer) -> list[int]:
    """The gunicorn workers of a running server (children of the master)."""
    found = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` has open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def tcp_sockets(local_port: int) -> list[tuple[int, str, int]]:
    """(remote port, state, inode) of every TCP socket bound to `local_port` (state 0A: a
    listener, 01: an established connection)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                found.append((int(fields[2].rsplit(":", 1)[1], 16), fields[3], int(fields[9])))
    return found


def server_side_inodes(server_port: int) -> dict[int, int]:
    """Client port -> inode of the server's end of each TCP connection to `server_port`."""
    return {port: inode for port, state, inode in tcp_sockets(server_port) if state == "01"}


def listeners_held(server: RunningServer) -> dict[int, set[int]]:
    """Master's and each worker's pid -> the inodes of the sockets listening on the server's
    port that it has open (a shared socket is the same inode in every process)."""
    listening = {inode for _, state, inode in tcp_sockets(server.port) if state == "0A"}
    pids = [server.process.pid, *worker_pids(server)]
    return {pid: socket_inodes(pid) & listening for pid in pids}


def wait_for_listeners(server: RunningServer, count: int, seconds: float = 30) -> None:
    """Until `count` sockets listen on the server's port: every worker has booted."""
    end = time.monotonic() + seconds
    while sum(state == "0A" for _, state, _ in tcp_sockets(server.port)) < count:
        assert time.monotonic() < end, f"not {count} listeners on {server.port}: {server.log()}"
        time.sleep(0.1)


def holders(server: RunningServer, client_ports: list[int]) -> list[int | None]:
    """For each client port, the pid of the worker that holds its connection (None: none)."""
    by_worker = {pid: socket_inodes(pid) for pid in worker_pids(server)}
    inodes = server_side_inodes(server.port)
    return [
        next((pid for pid, held in by_worker.items() if inodes.get(port) in held), None)
        for port in client_ports
    ]


def on_worker(server: RunningServer, pid: int, attempts: int = 200) -> http.client.HTTPSConnection:
    """A new connection that worker `pid` accepted (the kernel picks a worker per connection)."""
    for _ in range(attempts):
        connection = server.connection()
        connection.connect()  # TCP and TLS: the worker has accepted it
        if holders(server, [connection.sock.getsockname()[1]]) == [pid]:
            return connection
        connection.close()
    raise AssertionError(f"no connection of {attempts} went to worker {pid}")


def review_over(
    connection: http.client.HTTPConnection, review: dict[str, Any], path: str = "/validate"
) -> dict[str, Any]:
    """POST one review on a (kept-alive) connection and check the answer against the contract."""
    body = json.dumps(review).encode()
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    payload = json.loads(answer.read())
    if answer.status == 200:
        check_admission_response(review, payload, mutating=path.startswith("/mutate"))
    else:
        check_error_body(answer.status, payload)
    return {"status": answer.status, "body": payload, "headers": dict(answer.getheaders())}


def wait_ready(server: RunningServer, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            connection = server.connection()
            connection.request("GET", "/readyz")
            answer = connection.getresponse()
            answer.read()
            connection.close()
            if answer.status == 200:
                return
            time.sleep(0.1)  # a worker still waiting for its cluster caches (503)
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server not ready after {deadline}s:\n{server.log()}")


@contextmanager
def running_server(
    tmp_path: Path,
    policies: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    use_flags: bool = True,
    tls: tuple[Path, Path] | None = None,
    client_cert: tuple[Path, Path] | None = None,
    fd_limit: int | None = None,
    host: str = "127.0.0.1",
) -> Iterator[RunningServer]:
    """`host`: the bind's host part (e.g. "[::]"); the helper's clients use 127.0.0.1."""
    cert, key = tls or generate_dev_certificate(_fresh_dir(tmp_path / "tls"))
    port, metrics_port = free_port(), free_port()
    settings = {
        "POLICIES": str(policies),
        "BIND": f"{host}:{port}",
        "METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
        "WORKERS": "2",
    }
    args = [str(CLI), "serve"]
    environment = {**os.environ, **(env or {})}
    for name, value in settings.items():
        if use_flags:
            args += [f"--{name.lower().replace('_', '-')}", value]
        else:
            environment[f"CSR_WEBHOOK_{name}"] = value
    args += extra  # after the defaults: argparse keeps the last occurrence of a flag
    log_file = tmp_path / "server.log"
    with log_file.open("wb") as log:
        if fd_limit is not None:
            args = [sys.executable, "-c", LIMIT_FDS, str(fd_limit), *args]
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=environment)
    server = RunningServer(process, port, metrics_port, cert, log_file, client_cert)
    try:
        wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _fresh_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
