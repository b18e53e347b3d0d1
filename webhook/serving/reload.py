"""Hold the policy set in force; poll the directory and swap in a new set only when it is
valid as a whole (keep last good). Follows symlinks, so a ConfigMap `..data` swap is seen.

Polling costs a `stat` per file: a file is read again only when its metadata changed (or
changed too recently to be trusted), and never when it is over the size limit. Nothing here
knows about HTTP or metrics: results are reported through a callback, accepted sets are
handed to a `Publisher` before they take effect.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from webhook.errors import SourceError
from webhook.policy.loader import Sources, load_policies, policy_files
from webhook.policy.model import PolicySet
from webhook.policy.source import MAX_FILE_BYTES, read_bounded

log = logging.getLogger("csr_webhook")
ReloadListener = Callable[[bool, PolicySet | None, str | None], None]
# A file modified this recently may change again within its timestamp's granularity without
# its metadata changing, so its content is hashed again (git calls such entries "racy").
RACY_SECONDS = 2.0
_StatKey = tuple[int, int, int, int, int]


class PolicyView(Protocol):
    """What the web layer reads: the set in force and why the last reload was refused."""

    @property
    def current(self) -> PolicySet: ...

    @property
    def last_error(self) -> str | None: ...


class Publisher(Protocol):
    """Where an accepted set goes before it takes effect (the workers), and each reload's
    outcome; `publish_set` raises OSError when the set cannot be handed on."""

    def publish_set(self, policy_set: PolicySet, sources: Sources) -> None: ...

    def publish_status(self, digest: str, error: str | None) -> None: ...


def _content_fingerprint(entries: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, content in entries:
        digest.update(f"{name}\0{content}\n".encode(errors="surrogateescape"))
    return digest.hexdigest()


def sources_fingerprint(sources: Sources) -> str:
    """What `DirectoryFingerprint` gives for a directory that still holds exactly `sources`."""
    return _content_fingerprint(
        [(Path(name).name, hashlib.sha256(data).hexdigest()) for name, data in sources.policy_files]
    )


class DirectoryFingerprint:
    """A digest of every policy file's name and content (through symlinks) that reads a file
    only when its metadata changed since the last look, or is racy; a file over the size
    limit is never read (its metadata stands in for its content)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seen: dict[str, tuple[_StatKey, str]] = {}

    def __call__(self) -> str:
        files, _ = policy_files([self.directory])
        now = time.time()
        seen: dict[str, tuple[_StatKey, str]] = {}
        entries = []
        for path in files:
            try:
                info = os.stat(path)
            except OSError as exc:
                entries.append((path.name, f"unreadable: {exc.strerror}"))
                continue
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                entries.append((path.name, f"not read: {key}"))
                continue
            cached = self._seen.get(str(path))
            if cached is not None and cached[0] == key and now - info.st_mtime > RACY_SECONDS:
                content = cached[1]
            else:
                try:
                    content = hashlib.sha256(read_bounded(path)).hexdigest()
                except SourceError as exc:
                    content = f"unreadable: {exc}"
            seen[str(path)] = (key, content)
            entries.append((path.name, content))
        self._seen = seen
        return _content_fingerprint(entries)


def orphaned_signers(old: PolicySet, new: PolicySet) -> list[str]:
    """signerNames entries of the old set that no policy of the new set lists any more: a
    reload must not silently drop a signer from its policy (it would fall to
    --unmatched-signers)."""
    kept = {pattern.text for policy in new.policies for pattern in policy.signer_names}
    return [
        f"{pattern.text!r} (was policy {policy.name!r})"
        for policy in old.policies
        for pattern in policy.signer_names
        if pattern.text not in kept
    ]


class PolicyStore:
    """Thread-safe holder of the current PolicySet and the last reload error. Given the
    `sources` of the initial set, it notices a change made since they were read."""

    def __init__(
        self,
        directory: Path,
        initial: PolicySet,
        *,
        sources: Sources | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.directory = directory
        self._current = initial
        self._last_error: str | None = None
        self._lock = threading.Lock()
        self._publisher = publisher
        self._look = DirectoryFingerprint(directory)
        self._fingerprint = self._look() if sources is None else sources_fingerprint(sources)
        if publisher is not None:
            if sources is None:
                raise ValueError("a publishing store needs the sources of its initial set")
            publisher.publish_set(initial, sources)
            publisher.publish_status(initial.digest, None)

    @property
    def current(self) -> PolicySet:
        return self._current

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def pending(self) -> bool:
        """The directory's content is not the set in force: its last look was refused, and it
        stays so, look after look, until a change of the directory is accepted."""
        return self._last_error is not None

    def reload(self) -> bool:
        """Load the directory again; on any problem keep the current set and record why."""
        result = load_policies([self.directory])
        with self._lock:
            new = result.policy_set
            if new is None:
                error: str | None = "; ".join(str(p) for p in result.errors)
            else:
                error = self._refusal(new) or self._take(new, result.sources)
            self._last_error = error
            if self._publisher is not None:
                try:
                    self._publisher.publish_status(self._current.digest, error)
                except OSError as exc:
                    log.error("cannot publish the policy reload status: %s", exc)
            return error is None

    def _refusal(self, new: PolicySet) -> str | None:
        lost = orphaned_signers(self._current, new)
        if not lost:
            return None
        return (
            f"the new policy set leaves {', '.join(lost)} without a policy; "
            "a deleted or renamed file? (restart the server to remove a policy on purpose)"
        )

    def _take(self, new: PolicySet, sources: Sources) -> str | None:
        """Hand the set on, then put it in force here: a worker forked from now on finds it
        published, whichever set it inherits. Returns why it could not be handed on."""
        if self._publisher is not None:
            try:
                self._publisher.publish_set(new, sources)
            except OSError as exc:
                return f"cannot hand the new policy set to the workers: {exc}"
        self._current = new
        return None

    def poll(self, listener: ReloadListener | None = None) -> bool | None:
        """Reload when the directory changed since the last look; None when it did not."""
        fingerprint = self._look()
        if fingerprint == self._fingerprint:
            return None
        self._fingerprint = fingerprint
        ok = self.reload()
        if ok:
            log.info("policy set reloaded: %d policies", len(self.current.policies))
        else:
            log.error("policy reload rejected, keeping the last good set: %s", self.last_error)
        if listener is not None:
            listener(ok, self.current if ok else None, self.last_error)
        return ok

    def watch(self, interval: float, listener: ReloadListener | None = None) -> threading.Thread:
        """Poll every `interval` seconds in a daemon thread."""

        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    self.poll(listener)
                except Exception:  # a bug in polling must not kill the watcher
                    log.exception("policy watcher failed")

        thread = threading.Thread(target=loop, name="policy-watcher", daemon=True)
        thread.start()
        return thread
