"""The whole review path in process, one review at a time, with the CPU caches evicted before
each review as a real worker's other work (gunicorn's parser, TLS, the poller) evicts them.

    python -m bench.cache_pressure [--reviews N] [--evict 0,256,512,1024,4096] [--repeats R]
                                   [--json]

Each review goes through the WSGI review path (webhook.serving.views.review_wsgi: the
werkzeug Request, the review, metrics, the decision line to /dev/null, the answer) exactly
once per pass, the parse cache emptied first, after writing K KiB of unrelated memory. Prints
µs per review for each K and its ratio to K = 0, the median of R passes; every pass is in the
JSON. bench.micro times each phase hot, over many reviews in a row; this shows how much of the
in-server cost of a review is the memory it touches rather than the instructions it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Multiprocess metrics as in the server: set before prometheus_client is first imported.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="csr-webhook-evict-"))

from werkzeug.test import EnvironBuilder

from bench.corpus import DEFAULT_MIX, POLICY_DIR, build_corpus, parse_mix
from bench.micro import clear_caches

DEFAULT_EVICT = (0, 256, 512, 1024, 4096)


def review_environ(body: bytes) -> dict[str, Any]:
    """The WSGI environ of a review as the API server posts it, `body` as its input."""
    return EnvironBuilder(
        method="POST",
        path="/validate",
        query_string="timeout=10s",
        data=body,
        content_type="application/json",
    ).get_environ()


def measure(bodies: Sequence[bytes], evict_kib: Sequence[int], repeats: int = 3) -> dict[str, Any]:
    """{"rows": [{kib, us, ratio, passes_us, evicted_bytes}], "reviews": n}; every answer
    must allow. evicted_bytes: what one pass wrote before its reviews, K KiB each."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415 - after the directory is set

    from webhook.policy.loader import load_policies  # noqa: PLC0415
    from webhook.serving.app import create_app  # noqa: PLC0415
    from webhook.serving.logs import configure_decision_log, decision_log_kept  # noqa: PLC0415
    from webhook.serving.metrics import ReviewMetrics  # noqa: PLC0415
    from webhook.serving.reload import PolicyStore  # noqa: PLC0415
    from webhook.serving.settings import Settings  # noqa: PLC0415

    if 0 not in evict_kib:
        raise ValueError("--evict must include 0, the baseline of the ratios")
    policy_set = load_policies([POLICY_DIR]).policy_set
    assert policy_set is not None
    app = create_app(
        Settings(policies=POLICY_DIR),
        PolicyStore(POLICY_DIR, policy_set),
        ReviewMetrics(CollectorRegistry()),
    )
    environs = [review_environ(body) for body in bodies]
    fillers = {
        kib: (bytearray(kib * 1024), bytes([kib % 251 + 1]) * (kib * 1024)) for kib in evict_kib
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: object) -> Any:
        statuses.append(status)

    written = dict.fromkeys(evict_kib, 0)

    def one_pass(kib: int) -> float:
        memory, pattern = fillers[kib]
        clear_caches()
        clock = time.perf_counter
        total = 0.0
        written[kib] = 0
        for template, body in zip(environs, bodies, strict=True):
            environ = {**template, "wsgi.input": io.BytesIO(body)}
            if kib:
                memory[:] = pattern  # other work, as far as the caches can tell
                written[kib] += len(memory)
            start = clock()
            chunks = app.wsgi_app(environ, start_response)
            total += clock() - start
            answer = json.loads(b"".join(chunks))
            if statuses.pop() != "200 OK" or not answer["response"]["allowed"]:
                raise AssertionError(f"the bench policy must allow every review: {answer}")
        return total / len(bodies) * 1e6

    passes: dict[int, list[float]] = {kib: [] for kib in evict_kib}
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(decision_log_kept())
        configure_decision_log(cleanup.enter_context(open(os.devnull, "w")))
        one_pass(0)  # warm-up: first-use caches filled, then emptied by the next pass
        for number in range(repeats):
            # Alternating order, so a drift of the machine's speed touches every size alike.
            for kib in evict_kib if number % 2 == 0 else reversed(evict_kib):
                passes[kib].append(one_pass(kib))
    base = statistics.median(passes[0])
    rows = [
        {
            "kib": kib,
            "us": statistics.median(passes[kib]),
            "ratio": statistics.median(passes[kib]) / base,
            "passes_us": passes[kib],
            "evicted_bytes": written[kib],
        }
        for kib in evict_kib
    ]
    return {"reviews": len(bodies), "rows": rows}


def format_table(results: dict[str, Any]) -> str:
    lines = [
        f"the review path in process, {results['reviews']} reviews a pass, caches evicted first",
        f"{'evicted KiB':>12} {'us/review':>10} {'ratio':>7}",
    ]
    for row in results["rows"]:
        lines.append(f"{row['kib']:12} {row['us']:10.1f} {row['ratio']:7.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cache_pressure", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--reviews", type=int, default=2000, help="corpus size (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per size (default 3)")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"key mix (default {DEFAULT_MIX})")
    parser.add_argument(
        "--evict",
        default=",".join(map(str, DEFAULT_EVICT)),
        help="KiB written before each review, comma-separated, 0 included (default %(default)s)",
    )
    parser.add_argument("--corpus", type=Path, help="reviews.jsonl to use instead of building one")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.reviews < 1:
        parser.error("--repeats and --reviews must be at least 1")
    try:
        evict = [int(part) for part in args.evict.split(",")]
        if any(kib < 0 for kib in evict):
            raise ValueError("a size is negative")
        if 0 not in evict:
            raise ValueError("0, the baseline of the ratios, is missing")
    except ValueError as exc:
        parser.error(f"--evict {args.evict!r}: {exc}")
    if args.corpus:
        bodies = args.corpus.read_bytes().splitlines()
    else:
        bodies = build_corpus(args.reviews, parse_mix(args.mix)).bodies()
    results = measure(bodies, evict, args.repeats)
    print(json.dumps(results, indent=1) if args.json else format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
