"""Follow one recorded CREATE review from the view to the response and print the project
modules it enters, in order: a stop is a call from one module into another (a module calling
its own helpers, or consecutive calls into one module, count once).

    .venv/bin/python -m bench.module_walk [VECTOR.json]

It answers "how many modules does one review touch, and how often does it return to a module
it had left?" -- the shape the core should keep small. The recorded review is one the real
kube-apiserver sent in `make e2e` (tests/vectors/apiserver/); the policies are the shipped
ones (policies/), as `make e2e` serves them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from webhook.policy.loader import load_policies
from webhook.serving.app import create_app
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VECTOR = next((ROOT / "tests/vectors/apiserver").glob("*/002-*-validate-create.json"), None)
# Helpers every layer uses (text escaping, the bounded cache, the comparable forms of names and
# addresses, the JSON encoder of answers and log lines) are not stops on the way; the matcher is
# the one module every check may call back into.
NOT_A_STOP = (
    "webhook.text",
    "webhook.cache",
    "webhook.limits",
    "webhook.addresses",
    "webhook.jsonwire",
)
MAY_RETURN = ("webhook.matching",)


@contextmanager
def _recording(modules: list[str]) -> Iterator[None]:
    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call":
            return
        name = frame.f_globals.get("__name__", "")
        if name.startswith("webhook.matching."):  # the matcher's modules are one stop
            name = "webhook.matching"
        if not name.startswith("webhook.") or name.startswith(NOT_A_STOP):
            return
        if frame.f_code.co_name.startswith("__"):  # building or hashing a value is no visit
            return
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        if caller == name:  # a module calling its own helper goes nowhere
            return
        if not modules or modules[-1] != name:
            modules.append(name)

    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(None)


def walk(vector: Path) -> list[str]:
    recorded = json.loads(vector.read_text())
    directory = ROOT / "policies"
    loaded = load_policies([directory])
    assert loaded.policy_set is not None, [str(p) for p in loaded.problems]
    app = create_app(Settings(policies=directory), PolicyStore(directory, loaded.policy_set))
    client = app.test_client()
    body = json.dumps(recorded["request"]).encode()
    client.post(recorded["path"], data=body, content_type="application/json")  # warm caches
    modules: list[str] = []
    with _recording(modules):
        response = client.post(recorded["path"], data=body, content_type="application/json")
    assert response.status_code == 200, response.data
    return modules


def returns_to_left_modules(modules: list[str]) -> list[str]:
    """Each stop in a module the walk had already left, except coming back from a call into
    the matcher (X, matcher, X): calling the matcher and going on is what it is for."""
    found = []
    for i, module in enumerate(modules):
        back_from_matcher = i >= 2 and modules[i - 1] in MAY_RETURN and modules[i - 2] == module
        if module in modules[:i] and not back_from_matcher:
            found.append(module)
    return found


def main(argv: list[str]) -> int:
    vector = Path(argv[0]) if argv else DEFAULT_VECTOR
    if vector is None:
        print("no recorded CREATE review found; give a vector file", file=sys.stderr)
        return 2
    modules = walk(vector)
    returns = returns_to_left_modules(modules)
    others = [m for m in returns if m not in MAY_RETURN]
    for module in modules:
        print(module)
    print(
        f"{len(set(modules))} modules entered, {len(modules)} stops, {len(returns)} returns "
        f"to a module already left ({len(others)} not to the matcher: {sorted(set(others))})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
