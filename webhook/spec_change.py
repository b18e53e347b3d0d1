"""transition.spec_changed: the one comparison of a stored spec with the one an update sends,
shared by the CSR and the PodCertificateRequest transition checks (both specs are immutable).

Pure: two spec mappings (webhook.resource.SpecValue per key) in, at most one violation out,
naming the first changed key with both values and up to three more keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from webhook.decision import Violation
from webhook.resource import SpecValue
from webhook.text import show


def _render(spec: Mapping[str, SpecValue], key: str) -> str:
    value = spec.get(key)
    return "absent" if value is None else value.shown


def spec_change(old: Mapping[str, SpecValue], new: Mapping[str, SpecValue]) -> Violation | None:
    keys = [*old, *(k for k in new if k not in old)]
    changed = [
        k for k in keys if k not in old or k not in new or old[k].canonical != new[k].canonical
    ]
    if not changed:
        return None
    first = changed[0]
    path = (
        f"spec.{first}" if first.isidentifier() and len(first) <= 64 else f"spec[{show(first, 64)}]"
    )
    # Keys are named short and at most three more listed: the two values are shown whole.
    others = ""
    if len(changed) > 1:
        more = f", … {len(changed) - 4} more" if len(changed) > 4 else ""
        others = f"; also changed: [{', '.join(show(k, 64) for k in changed[1:4])}{more}]"
    return Violation(
        code="transition.spec_changed",
        field=path,
        message=f"spec may never change in an update: {path} is {_render(new, first)}, "
        f"stored {_render(old, first)}{others}",
    )
