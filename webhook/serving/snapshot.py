"""Hand the master's policy set to the workers through a private runtime directory.

Only the master reads the policy directory. It publishes each set it accepts as a snapshot
of the bytes the set was built from, and each reload's outcome as a small status file, both
replaced atomically (write, then rename). A worker serves the set it inherited at fork, takes
the published one before serving, then polls only the status: when the hash there differs
from its own, it rebuilds the snapshot from memory (never the policy directory), checks the
hash and swaps. Each worker reports the hash it serves for the master's metrics.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from webhook.errors import SnapshotError, SourceError
from webhook.policy.loader import Sources, build_policy_set
from webhook.policy.model import PolicySet
from webhook.policy.source import read_bounded

log = logging.getLogger("csr_webhook")
SNAPSHOT = "policy-set.json"
STATUS = "status.json"
SERVING = "serving"  # one file per worker, named by its pid, holding the hash it serves
MAX_ERROR_CHARS = 16 * 1024  # of a reload error in the status file: /readyz shows it
_STATUS_BYTES = 2 * MAX_ERROR_CHARS + 4096  # JSON escaping may double the error
_HASH = re.compile(r"[0-9a-f]{64}")
FollowListener = Callable[[bool, str | None], None]


def create_runtime_directory() -> Path:
    """A fresh directory only this user can read (mkdtemp: mode 0700), under TMPDIR."""
    directory = Path(tempfile.mkdtemp(prefix="csr-webhook-run-"))
    (directory / SERVING).mkdir()
    return directory


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _encode(files: tuple[tuple[str, bytes], ...]) -> list[list[str]]:
    return [[name, base64.b64encode(data).decode()] for name, data in files]


def _decode(value: object) -> tuple[tuple[str, bytes], ...]:
    if not isinstance(value, list):
        raise SnapshotError("file list is not a list")
    files = []
    for entry in value:
        if not (
            isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)
        ):
            raise SnapshotError("file entry is not [name, base64]")
        try:
            files.append((entry[0], base64.b64decode(entry[1], validate=True)))
        except binascii.Error as exc:
            raise SnapshotError(f"content of {entry[0]!r} is not base64: {exc}") from None
    return tuple(files)


class SnapshotPublisher:
    """The master's side: publish sets and reload outcomes, read what the workers serve."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def publish_set(self, policy_set: PolicySet, sources: Sources) -> None:
        body = {
            "hash": policy_set.digest,
            "policyFiles": _encode(sources.policy_files),
            "caFiles": _encode(sources.ca_files),
        }
        _write_atomically(self.directory / SNAPSHOT, json.dumps(body).encode())

    def publish_status(self, digest: str, error: str | None) -> None:
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = f"{error[:MAX_ERROR_CHARS]}... ({len(error) - MAX_ERROR_CHARS} more characters)"
        body = {"hash": digest, "error": error}
        _write_atomically(self.directory / STATUS, json.dumps(body).encode())

    def served(self) -> list[tuple[int, str]]:
        """(pid, hash) of every worker that reported, by pid."""
        found = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory / SERVING):
                if not entry.name.isdigit():
                    continue
                try:
                    digest = read_bounded(Path(entry.path), 64).decode("ascii")
                except (SourceError, UnicodeDecodeError):
                    continue
                if _HASH.fullmatch(digest):
                    found.append((int(entry.name), digest))
        return sorted(found)

    def forget(self, pid: int) -> None:
        """A worker exited: its report goes with it."""
        with contextlib.suppress(OSError):
            (self.directory / SERVING / str(pid)).unlink()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class SnapshotFollower:
    """A worker's side: the master's last good set, as a PolicyView."""

    def __init__(
        self,
        directory: Path,
        inherited: PolicySet,
        *,
        pid: int | None = None,
        listener: FollowListener | None = None,
    ) -> None:
        self.directory = directory
        self._current = inherited
        self._pid = pid
        self._listener = listener
        self._master_error: str | None = None
        self._own_error: str | None = None
        self._refused: str | None = None  # a hash that failed here; not tried again
        self._reported: str | None = None

    @property
    def current(self) -> PolicySet:
        return self._current

    @property
    def last_error(self) -> str | None:
        return self._own_error or self._master_error

    def poll(self) -> bool | None:
        """Take the published set if it is not the one served; None when nothing changed."""
        changed: bool | None = None
        try:
            published, self._master_error = self._read_status()
        except SnapshotError as exc:
            changed = self._refuse(None, str(exc))
        else:
            if published == self._current.digest:
                self._own_error = self._refused = None
            elif published != self._refused:
                changed = self._take(published)
        self._report()
        return changed

    def _read_status(self) -> tuple[str, str | None]:
        try:
            body = json.loads(read_bounded(self.directory / STATUS, _STATUS_BYTES))
        except (SourceError, ValueError) as exc:
            raise SnapshotError(f"cannot read the master's policy status: {exc}") from None
        digest, error = body.get("hash"), body.get("error")
        if not (isinstance(digest, str) and _HASH.fullmatch(digest)):
            raise SnapshotError("the master's policy status names no set hash")
        return digest, error if isinstance(error, str) else None

    def _take(self, published: str) -> bool | None:
        path = self.directory / SNAPSHOT
        try:
            body = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            return self._refuse(published, f"cannot read the master's policy set: {exc}")
        try:
            digest = body["hash"]
            sources = Sources(_decode(body["policyFiles"]), _decode(body["caFiles"]))
        except (KeyError, TypeError, SnapshotError) as exc:
            return self._refuse(published, f"the master's policy set is malformed: {exc!r}")
        if digest == self._current.digest:
            return None  # the status is a step behind the snapshot; it will catch up
        result = build_policy_set(sources)
        if result.policy_set is None or result.policy_set.digest != digest:
            why = "; ".join(str(p) for p in result.errors) or "its content does not match its hash"
            return self._refuse(digest, f"the master's policy set {digest} does not load: {why}")
        self._current = result.policy_set
        self._own_error = None
        log.info(
            "policy set %s from the master in force: %d policies",
            digest,
            len(result.policy_set.policies),
        )
        if self._listener is not None:
            self._listener(True, None)
        return True

    def _refuse(self, digest: str | None, why: str) -> bool:
        self._refused = digest
        error = f"{why}; this worker keeps serving policy set {self._current.digest}"
        if error != self._own_error:
            log.error("%s", error)
            if self._listener is not None:
                self._listener(False, error)
        self._own_error = error
        return False

    def _report(self) -> None:
        if self._pid is None or self._reported == self._current.digest:
            return
        try:
            _write_atomically(
                self.directory / SERVING / str(self._pid), self._current.digest.encode()
            )
            self._reported = self._current.digest
        except OSError as exc:
            log.error("cannot report the policy set this worker serves: %s", exc)

    def watch(self, interval: float) -> threading.Thread:
        """Poll every `interval` seconds in a daemon thread."""

        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    self.poll()
                except Exception:  # a bug in polling must not kill the follower
                    log.exception("policy set follower failed")

        thread = threading.Thread(target=loop, name="policy-follower", daemon=True)
        thread.start()
        return thread
