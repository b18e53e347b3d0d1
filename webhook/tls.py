"""Serving-certificate facts: expiry of the certificate on disk, cached by file identity."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509


class CertificateExpiry:
    """`notAfter` of the first certificate in a PEM file; keeps the last good value when the
    file is missing or unreadable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._value: float | None = None

    def __call__(self) -> float | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return self._value
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            try:
                certificate = x509.load_pem_x509_certificate(self.path.read_bytes())
            except (OSError, ValueError):
                return self._value
            self._stamp = stamp
            self._value = certificate.not_valid_after_utc.timestamp()
        return self._value
