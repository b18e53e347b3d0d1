"""The policy set the approval controller judges by: loaded from --policies, polled for changes.

A new set takes effect only when the directory loads without error as a whole (keep last
good); `on_change` is called after a new set is in force (the controller then judges every
pending CSR again). Loading is webhook.policy.loader's, the same as `serve`'s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from webhook.policy.loader import load_policies
from webhook.policy.model import PolicySet

log = logging.getLogger("csr_webhook.approver")


class PolicyDirectory:
    def __init__(self, directory: Path, initial: PolicySet) -> None:
        self.directory = directory
        self._current = initial
        self.last_error = ""
        self._stop = threading.Event()

    @property
    def current(self) -> PolicySet:
        return self._current

    def reload(self) -> bool:
        """Load the directory again; True when a different set is now in force."""
        result = load_policies([self.directory])
        if result.policy_set is None:
            error = f"{len(result.errors)} problem(s), first: {result.errors[0]}"
            if error != self.last_error:
                log.error(
                    "approver: policy set in %s refused (%s); keeping the last good one",
                    self.directory,
                    error,
                )
            self.last_error = error
            return False
        self.last_error = ""
        if result.policy_set.digest == self._current.digest:
            return False
        self._current = result.policy_set
        log.info("approver: policy set %s in force", result.policy_set.digest[:12])
        return True

    def watch(self, interval: float, on_change: Callable[[], None]) -> None:
        def poll() -> None:
            while not self._stop.wait(interval):
                try:
                    changed = self.reload()
                except Exception:  # a bug in one reload must not end the polling
                    log.exception("approver: policy reload failed")
                    continue
                if changed:
                    on_change()

        threading.Thread(target=poll, name="approver-policies", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
