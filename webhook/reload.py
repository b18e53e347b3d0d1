"""Holds the policy set in force and replaces it only with a valid new one (keep last good).

The watcher that polls the directory plugs in here; loading and validation live in
`webhook.policy.loader`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from webhook.policy.loader import load_policies
from webhook.policy.model import PolicySet


class PolicyStore:
    """Thread-safe holder of the current PolicySet and the last reload error."""

    def __init__(self, directory: Path, initial: PolicySet) -> None:
        self.directory = directory
        self._current = initial
        self._last_error: str | None = None
        self._lock = threading.Lock()

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
            self._current = result.policy_set
            self._last_error = None
            return True
