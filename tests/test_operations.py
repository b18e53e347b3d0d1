"""Operational behaviour of a real `csr-webhook serve` (docs/server.md): hot policy reload with the
ConfigMap layout, keep-last-good, certificate rotation under traffic, mTLS, SIGTERM under
load, queue deadlines, hostile and idle clients."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY
from tests.reviews import create_review
from tests.server import RunningServer, review_over, running_server
from tests.test_metrics import scrape, total

pytestmark = pytest.mark.server
INTERVAL = "0.5"
ALLOWED = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
OTHER_SIGNER = create_review(build_csr(common_name="alice"), signer_name="example.com/other")


def configmap_dir(root: Path, files: dict[str, str], generation: int) -> Path:
    """Lay files out as a kubelet projects a ConfigMap: ..<ts>/ dirs, ..data link, file links."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = root / f"..2026_11_28_07_00_{generation:02d}.000000001"
    stamp.mkdir()
    for name, text in files.items():
        (stamp / name).write_text(text)
    temporary = root / "..data_tmp"
    temporary.symlink_to(stamp.name)
    os.replace(temporary, root / "..data")  # the atomic swap
    for name in files:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    for stale in root.glob("..2026*"):
        if stale != stamp:
            shutil.rmtree(stale)
    for link in root.iterdir():
        if link.is_symlink() and not link.name.startswith(".") and link.name not in files:
            link.unlink()
    return root


def verdicts(server: RunningServer, review: dict[str, Any], count: int = 12) -> set[bool]:
    """Allowed-or-not over fresh connections, which land on every worker."""
    seen = set()
    for _ in range(count):
        connection = server.connection()
        seen.add(review_over(connection, review)["body"]["response"]["allowed"])
        connection.close()
    return seen


def readyz(server: RunningServer) -> dict[str, Any]:
    connection = server.connection()
    connection.request("GET", "/readyz")
    answer = connection.getresponse()
    body: dict[str, Any] = json.loads(answer.read())
    connection.close()
    assert answer.status == 200
    return body


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


WIDER = BASIC_POLICY.replace(
    '["example.com/signer"]', '["example.com/signer", "example.com/other"]'
)


def test_hot_reload_follows_configmap_swaps_and_keeps_last_good(tmp_path: Path) -> None:
    policies = configmap_dir(tmp_path / "cm", {"example.yaml": BASIC_POLICY}, 1)
    with running_server(tmp_path, policies, "--reload-interval", INTERVAL) as server:
        assert verdicts(server, OTHER_SIGNER) == {False}
        hash_before = readyz(server)["policySetHash"]
        configmap_dir(policies, {"example.yaml": WIDER}, 2)
        time.sleep(2 * float(INTERVAL) + 0.5)
        assert verdicts(server, OTHER_SIGNER) == {True}, "not in force on every worker"
        assert readyz(server)["policySetHash"] != hash_before
        good_hash = readyz(server)["policySetHash"]

        broken_sets = {
            "yaml error": {"example.yaml": WIDER + "  enforcement: [\n"},
            "schema error": {"example.yaml": WIDER.replace("usages:", "usage:")},
            "signer loses its policy": {
                "unrelated.yaml": WIDER.replace("example.com/", "other.example/").replace(
                    "name: example", "name: unrelated"
                )
            },
            "alias bomb": {
                "example.yaml": WIDER,
                "bomb.yaml": "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
                + "".join(
                    f"b{i}: &b{i} [{', '.join(['*' + ('a' if i == 0 else f'b{i - 1}')] * 10)}]\n"
                    for i in range(8)
                ),
            },
            "huge file": {
                "example.yaml": WIDER,
                "huge.yaml": "# " + "x" * (2 * 1024 * 1024) + "\n",
            },
        }
        settle = 2 * float(INTERVAL) + 0.3  # every worker has looked at the directory by then

        def reloads(result: str) -> float:
            return total(scrape(server), "csr_webhook_policy_reloads_total", result=result)

        for index, (case, files) in enumerate(broken_sets.items()):
            configmap_dir(policies, files, 3 + index)
            wait_for(lambda expected=index + 1: reloads("failure") == expected)
            time.sleep(settle)
            for _ in range(4):
                status = readyz(server)
                assert status["lastReloadError"], case
                assert status["policySetHash"] == good_hash, case
            assert verdicts(server, OTHER_SIGNER, 6) == {True}, f"{case}: last good set lost"
            configmap_dir(policies, {"example.yaml": WIDER}, 13 + index)
            wait_for(lambda expected=index + 2: reloads("success") == expected)
            time.sleep(settle)
        samples = scrape(server)
    assert "signer" in str(broken_sets)
    assert total(samples, "csr_webhook_policy_reloads_total", result="failure") == 5
    assert total(samples, "csr_webhook_policy_reloads_total", result="success") == 6


def make_pair(
    directory: Path, name: str, *, ca: bool = False
) -> tuple[Path, Path, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=3))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / f"{name}.crt"
    key_file = directory / f"{name}.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file, certificate


def served_certificate(port: int) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "example.yaml").write_text(BASIC_POLICY)
    return directory


class Traffic:
    """Continuous reviews on fresh connections from a background thread; records failures."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.sent = 0
        self.failures: list[str] = []
        self.refused: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        while not self._stop.is_set():
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.server.port, context=context, timeout=10
            )
            try:
                connection.connect()  # TCP and TLS: not yet a request the server accepted
            except OSError as exc:
                self.refused.append(repr(exc))
                connection.close()
                time.sleep(0.05)
                continue
            try:
                answer = review_over(connection, ALLOWED)
                if answer["status"] != 200:
                    self.failures.append(str(answer))
            except Exception as exc:  # any failure is what we are counting
                self.failures.append(repr(exc))
            finally:
                connection.close()
            self.sent += 1

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_rotates_serving_certificate_under_traffic_and_keeps_last_good(
    tmp_path: Path, policies: Path
) -> None:
    tls = tmp_path / "serving"
    cert, key, first = make_pair(tls / "v1", "first")
    live_cert, live_key = tls / "tls.crt", tls / "tls.key"
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    with (
        running_server(
            tmp_path, policies, "--reload-interval", INTERVAL, tls=(live_cert, live_key)
        ) as server,
        Traffic(server) as traffic,
    ):
        assert served_certificate(server.port).serial_number == first.serial_number
        new_cert, new_key, second = make_pair(tls / "v2", "second")
        shutil.copy(new_key, tls / "key.tmp")
        shutil.copy(new_cert, tls / "crt.tmp")
        os.replace(tls / "key.tmp", live_key)
        os.replace(tls / "crt.tmp", live_cert)
        # Every worker checks the files on its own when it accepts: wait until fresh
        # connections, whichever worker takes them, all see "second" before breaking the files
        # (a worker that saw no connection in between would keep "first").
        wait_for(
            lambda: all(
                served_certificate(server.port).serial_number == second.serial_number
                for _ in range(12)
            ),
            4 * float(INTERVAL) + 10,
        )
        # A mismatched pair (third cert, second key) and garbage are refused; "second" stays.
        bad_cert, _, _ = make_pair(tls / "v3", "third")
        shutil.copy(bad_cert, tls / "crt.tmp")
        os.replace(tls / "crt.tmp", live_cert)
        time.sleep(2 * float(INTERVAL) + 0.5)
        (tls / "crt.tmp").write_text("garbage")
        os.replace(tls / "crt.tmp", live_cert)
        time.sleep(2 * float(INTERVAL) + 0.5)
        assert served_certificate(server.port).serial_number == second.serial_number
        samples = scrape(server)
        time.sleep(0.5)
    assert traffic.sent > 10
    assert traffic.failures == []
    assert total(samples, "csr_webhook_tls_certificate_reloads_total", result="success") == 1
    assert total(samples, "csr_webhook_tls_certificate_reloads_total", result="failure") == 2
    [(_, not_after)] = samples["csr_webhook_tls_certificate_not_after_timestamp_seconds"]
    assert not_after == second.not_valid_after_utc.timestamp()
    assert "rejected, keeping the last good pair" in server.log()


def test_mutual_tls_refuses_clients_without_a_trusted_certificate(
    tmp_path: Path, policies: Path
) -> None:
    ca_dir = tmp_path / "clients"
    ca_cert, ca_key_file, ca = make_pair(ca_dir, "client-ca", ca=True)
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), None)
    _, other_key_file, other_ca = make_pair(ca_dir, "other-ca", ca=True)
    other_key = serialization.load_pem_private_key(other_key_file.read_bytes(), None)

    def client_pair(issuer: x509.Certificate, issuer_key: Any, name: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(issuer_key, hashes.SHA256())
        )
        cert_path, key_path = ca_dir / f"{name}.pem", ca_dir / f"{name}-key.pem"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path

    trusted = client_pair(ca, ca_key, "apiserver")
    untrusted = client_pair(other_ca, other_key, "intruder")
    with running_server(
        tmp_path, policies, "--client-ca", str(ca_cert), client_cert=trusted
    ) as server:

        def attempt(pair: tuple[Path, Path] | None) -> int | str:
            context = server.tls_context()
            if pair is not None:
                context.load_cert_chain(*pair)
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            try:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(http_request("/validate", json.dumps(ALLOWED).encode()))
                    return read_response(tls)[0]
            except (ssl.SSLError, OSError) as exc:
                return type(exc).__name__
            finally:
                raw.close()

        assert attempt(trusted) == 200
        assert isinstance(attempt(None), str)
        assert isinstance(attempt(untrusted), str)
        log = server.log()
    assert "certificate" in log.lower()


def test_sigterm_under_load_completes_accepted_requests_and_exits_zero(
    tmp_path: Path, policies: Path
) -> None:
    with running_server(tmp_path, policies) as server:
        with Traffic(server) as traffic:
            time.sleep(1.0)
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(timeout=40)
            elapsed = time.monotonic() - started
        log = server.log()
    assert code == 0
    assert elapsed < 30 + 5
    assert traffic.sent > 5
    # Connections after the listener closed are refused before any request is sent;
    # no request the server accepted is cut off.
    assert traffic.failures == []
    assert "Shutting down" in log


def raw_tls(server: RunningServer) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return server.tls_context().wrap_socket(raw, server_hostname="localhost")


def http_request(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def read_response(tls: ssl.SSLSocket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += tls.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(rest) < length:
        rest += tls.recv(65536)
    return int(head.split()[1]), json.loads(rest[:length])


def test_review_that_took_past_its_timeout_to_arrive_is_not_evaluated(
    tmp_path: Path, policies: Path
) -> None:
    """A review's wait counts from its first byte: the API server gave up on a review whose
    bytes (or whose turn in the queue) took longer than its `?timeout=`. While they dribble
    in, they hold no thread: another review on the only thread is answered meanwhile."""
    body = json.dumps(ALLOWED).encode()
    with running_server(tmp_path, policies, "--workers", "1", "--threads", "1") as server:
        hurried, patient = raw_tls(server), raw_tls(server)
        try:
            late = http_request("/validate?timeout=1s", body)
            slow = http_request("/validate?timeout=30s", body)
            hurried.sendall(late[:200])
            patient.sendall(slow[:200])
            connection = server.connection()
            connection.timeout = 5
            assert review_over(connection, ALLOWED)["body"]["response"]["allowed"] is True
            connection.close()
            time.sleep(2.0)
            hurried.sendall(late[200:])
            patient.sendall(slow[200:])
            status, error = read_response(hurried)
            assert status == 503
            assert "past its 1s timeout; not evaluated" in error["error"]
            status, answer = read_response(patient)
            assert status == 200
            assert answer["response"]["allowed"] is True
        finally:
            hurried.close()
            patient.close()


def test_idle_connections_do_not_starve_the_workers(tmp_path: Path, policies: Path) -> None:
    with running_server(tmp_path, policies, "--workers", "1", "--threads", "2") as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
        idle_tls = [raw_tls(server) for _ in range(5)]
        try:
            connection = server.connection()
            connection.timeout = 30
            assert review_over(connection, ALLOWED)["body"]["response"]["allowed"] is True
            connection.close()
        finally:
            for sock in idle + idle_tls:
                sock.close()


def test_deeply_nested_json_is_refused_with_400_by_the_server(
    tmp_path: Path, policies: Path
) -> None:
    body = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    with running_server(tmp_path, policies) as server:
        tls = raw_tls(server)
        tls.sendall(http_request("/validate", body))
        status, error = read_response(tls)
        tls.close()
        log = server.log()
    assert status == 400
    assert "nested too deeply" in error["error"]
    assert "RecursionError" not in log
