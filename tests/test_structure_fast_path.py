"""The one-regex fast path of the DNS SAN structure check (webhook.checks.structure) finds
nothing to report exactly when the label-by-label check finds nothing, on generated names."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from webhook.checks.structure import _CLEAN_DNS, _dns_name, dns_name_problems

labels = st.one_of(
    st.text(alphabet="aZ09-*", min_size=0, max_size=5),
    st.sampled_from(["xn--", "XN--abc", "xn--ls8h", "1", "255", "\u212a", "a" * 63, "a" * 64]),
)
names = st.lists(labels, min_size=1, max_size=5).map(".".join)


@settings(deadline=None, max_examples=500)
@given(name=names)
@example(name="*.example.com")
@example(name="1.2.3.4")
@example(name="1.2.3.4a")
@example(name="a." * 126 + "bc")
def test_fast_path_agrees_with_the_label_by_label_check(name: str) -> None:
    assert list(_dns_name(name)) == list(dns_name_problems(name))


def test_fast_path_takes_the_usual_names() -> None:
    for name in ("svc-1.bench.example", "*.web.svc.example", "a-b.c0.example"):
        assert _CLEAN_DNS.fullmatch(name)
        assert list(dns_name_problems(name)) == []
