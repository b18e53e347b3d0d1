"""The serving TLS context: built once, rebuilt only when the certificate or key files change,
and only if the new pair loads (a garbage or mismatched pair keeps the last good context).

gunicorn asks for a context on every new connection; building one loads and parses the key
pair each time, so the cached context is handed out instead. TLS 1.2 is the minimum. Every
socket it wraps has an I/O timeout whenever it is in blocking mode, as a backstop: the worker
does the handshake, reads requests and writes responses non-blocking in its poller
(webhook/serving/worker.py), so no thread waits on a client.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509

log = logging.getLogger("csr_webhook")
FileStamp = tuple[int, int, int] | None
RotationListener = Callable[[bool, str | None], None]


IO_TIMEOUT_SECONDS = 10.0  # the API server's own webhook timeout is at most 30 s


class BoundedSSLSocket(ssl.SSLSocket):
    """gunicorn calls setblocking(True) before each read; keep a timeout instead."""

    def setblocking(self, flag: bool) -> None:
        super().setblocking(flag)
        if flag:
            self.settimeout(IO_TIMEOUT_SECONDS)


class BoundedContext(ssl.SSLContext):
    sslsocket_class = BoundedSSLSocket

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock.settimeout(IO_TIMEOUT_SECONDS)  # a handshake done in blocking mode is bounded too
        return super().wrap_socket(sock, *args, **kwargs)


def _stamp(path: Path) -> FileStamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


class ServingContext:
    """Thread-safe cache of the SSLContext for one certificate/key pair (and client CA)."""

    def __init__(
        self,
        cert: Path,
        key: Path,
        client_ca: Path | None = None,
        *,
        check_interval: float = 5.0,
        listener: RotationListener | None = None,
    ) -> None:
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.check_interval = check_interval
        self.listener = listener
        self._lock = threading.Lock()
        self._stamps = self._current_stamps()
        self._context = self._build()
        self.not_after = self._read_not_after()
        self._checked = time.monotonic()
        self.last_error: str | None = None

    def _current_stamps(self) -> tuple[FileStamp, ...]:
        paths = [self.cert, self.key] + ([self.client_ca] if self.client_ca else [])
        return tuple(_stamp(p) for p in paths)

    def _build(self) -> ssl.SSLContext:
        context = BoundedContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION
        context.load_cert_chain(certfile=str(self.cert), keyfile=str(self.key))
        if self.client_ca is not None:
            context.load_verify_locations(cafile=str(self.client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def _read_not_after(self) -> float:
        certificate = x509.load_pem_x509_certificate(self.cert.read_bytes())
        return certificate.not_valid_after_utc.timestamp()

    def get(self) -> ssl.SSLContext:
        """The context in force; looks at the files at most once per check interval."""
        if time.monotonic() - self._checked >= self.check_interval:
            self.refresh()
        return self._context

    def refresh(self) -> bool | None:
        """Rebuild when the files changed: True rotated, False rejected, None unchanged."""
        with self._lock:
            self._checked = time.monotonic()
            stamps = self._current_stamps()
            if stamps == self._stamps:
                return None
            self._stamps = stamps
            try:
                context, not_after = self._build(), self._read_not_after()
            except (OSError, ssl.SSLError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error(
                    "serving certificate %s / key %s rejected, keeping the last good pair: %s",
                    self.cert,
                    self.key,
                    self.last_error,
                )
                ok = False
            else:
                self._context, self.not_after, self.last_error = context, not_after, None
                log.info("serving certificate reloaded from %s", self.cert)
                ok = True
        if self.listener is not None:
            self.listener(ok, self.last_error)
        return ok
