"""Hold the policy set in force; poll the directory and swap in a new set only when it is
valid as a whole (keep last good). Follows symlinks, so a ConfigMap `..data` swap is seen.

Nothing here knows about HTTP or metrics: results are reported through a callback.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from webhook.policy.loader import load_policies, policy_files
from webhook.policy.model import PolicySet

log = logging.getLogger("csr_webhook")
ReloadListener = Callable[[bool, PolicySet | None, str | None], None]


def directory_fingerprint(directory: Path) -> str:
    """A digest of every policy file's name and content (through symlinks)."""
    digest = hashlib.sha256()
    files, _ = policy_files([directory])
    for path in files:
        digest.update(path.name.encode() + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError as exc:
            digest.update(f"unreadable: {exc}".encode())
    return digest.hexdigest()


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
    """Thread-safe holder of the current PolicySet and the last reload error."""

    def __init__(self, directory: Path, initial: PolicySet) -> None:
        self.directory = directory
        self._current = initial
        self._last_error: str | None = None
        self._lock = threading.Lock()
        self._fingerprint = directory_fingerprint(directory)

    @property
    def current(self) -> PolicySet:
        return self._current

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def reload(self) -> bool:
        """Load the directory again; on any problem keep the current set and record why."""
        result = load_policies([self.directory])
        with self._lock:
            if result.policy_set is None:
                self._last_error = "; ".join(str(p) for p in result.errors)
                return False
            lost = orphaned_signers(self._current, result.policy_set)
            if lost:
                self._last_error = (
                    f"the new policy set leaves {', '.join(lost)} without a policy; "
                    "a deleted or renamed file? (restart the server to remove a policy on purpose)"
                )
                return False
            self._current = result.policy_set
            self._last_error = None
            return True

    def poll(self, listener: ReloadListener | None = None) -> bool | None:
        """Reload when the directory changed since the last look; None when it did not."""
        fingerprint = directory_fingerprint(self.directory)
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
