"""Per-phase micro-benchmark of one review, in-process, on the benchmark corpus.

Times each phase of the /validate path separately with the same libraries the server uses,
prometheus_client in multiprocess mode as in gunicorn's workers, and decision lines written to
/dev/null as they would be to stdout. Prints a table, or JSON with --json.

    python -m bench.micro [--reviews N] [--repeats R] [--json]

Each pass times every phase over its own slice of the corpus, phase after phase, after a
warm-up on another slice: no review is seen twice by a phase, so caches keyed on the review do
not hit (a CREATE review arrives once). Each figure is the median over R passes of the mean per
review; every pass is in the JSON.
Nested phases say so ("within ..."); `checks` is derived (engine - CSR parse: the engine is timed
on reviews already parsed, so the object parse is not inside it), the difference of two noisy
timings; `engine_parsed` times the checks themselves, the engine once more on the slice it has
just parsed (every CSR a parse-cache hit; the cache's digest and lookup are inside).
The machine's speed drifts between runs (±15 % here); compare phases within one run, and two
versions of the code by alternating runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Multiprocess metrics as in the server: set before prometheus_client is first imported.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="csr-webhook-micro-"))

from cryptography import x509

from bench.corpus import DEFAULT_MIX, POLICY_DIR, build_corpus, parse_mix

Phase = tuple[str, str, Callable[[Any], object]]


def clear_caches() -> None:
    """Empty every functools cache in webhook.* and engine's parse cache (setting up evaluated
    the whole corpus: with the parse cache full, the engine phase skipped most parses and the
    derived checks row subtracted a parse the engine never did)."""
    from webhook.parse_cache import PARSE_CACHE  # noqa: PLC0415

    PARSE_CACHE.clear()
    for name, module in list(sys.modules.items()):
        if name == "webhook" or name.startswith("webhook."):
            for value in list(vars(module).values()):
                try:
                    clear = getattr(value, "cache_clear", None)
                except RuntimeError:  # flask's current_app and the like, outside a request
                    continue
                if callable(clear):
                    clear()


def _durations(function: Callable[[Any], object], items: Sequence[Any]) -> list[float]:
    clock = time.perf_counter
    out = []
    for item in items:
        start = clock()
        function(item)
        out.append(clock() - start)
    return out


def measure(bodies: Sequence[bytes], kinds: Sequence[str], repeats: int = 3) -> dict[str, Any]:
    """{phase: {us, within, by_kind: {kind: us}, passes: [us, ...]}} plus derived rows."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415 - after the directory is set

    from webhook.admission import parse_csr_object, parse_review  # noqa: PLC0415
    from webhook.engine import EngineOptions, evaluate  # noqa: PLC0415
    from webhook.parse_cache import PARSE_CACHE  # noqa: PLC0415
    from webhook.policy.loader import load_policies  # noqa: PLC0415
    from webhook.response import build_response, encode_response  # noqa: PLC0415
    from webhook.serving.logs import (  # noqa: PLC0415
        configure_decision_log,
        decision_log_kept,
        log_decision,
    )
    from webhook.serving.metrics import ReviewMetrics  # noqa: PLC0415
    from webhook.x509.common_csr import read_common  # noqa: PLC0415
    from webhook.x509.csr import PEM_TYPE, parse_csr  # noqa: PLC0415
    from webhook.x509.pem import sole_block_body  # noqa: PLC0415

    policies = load_policies([POLICY_DIR]).policy_set
    assert policies is not None
    options = EngineOptions()
    requests = [parse_review(b) for b in bodies]
    raw_objects = [json.loads(b)["request"]["object"] for b in bodies]
    pems = [(r.object.request if r.object else None) or b"" for r in requests]
    ders = [parse_csr(p).der for p in pems]
    # csr_read times parse_csr's own reading alone, which is all of it but the signature check
    # only while every request takes the fast path.
    assert all(read_common(d) for d in ders), "a bench CSR is not read by the fast path"
    decisions = [evaluate(r, policies, options) for r in requests]
    assert all(d.allowed for d in decisions), "the bench policy must allow every review"
    pairs = list(zip(requests, decisions, strict=True))

    metrics = ReviewMetrics(CollectorRegistry())
    # Left as found in `finally`: the decision log put back, the sink closed.
    cleanup = contextlib.ExitStack()
    cleanup.enter_context(decision_log_kept())
    sink = cleanup.enter_context(open(os.devnull, "w"))  # noqa: SIM115 - the stack closes it
    configure_decision_log(sink)

    def verify(der: bytes) -> bool:
        return x509.load_der_x509_csr(der).is_signature_valid

    def read(pem: bytes) -> object:
        return read_common(sole_block_body(pem, PEM_TYPE) or b"")

    def encode(pair: tuple[Any, Any]) -> object:
        return encode_response(build_response(pair[0].uid, pair[1]))

    def observe(pair: tuple[Any, Any]) -> None:
        metrics.observe(
            webhook="validate",
            resource="certificatesigningrequests",
            operation="CREATE",
            subresource="",
            decision=pair[1],
            seconds=0.001,
        )

    def log(pair: tuple[Any, Any]) -> None:
        log_decision(pair[0], pair[1], webhook="validate", seconds=0.001)

    phases: list[tuple[str, str, Callable[[Any], object], Sequence[Any]]] = [
        ("json_decode", "review_parse", json.loads, bodies),
        ("review_parse", "", parse_review, bodies),
        ("object_parse", "review_parse", parse_csr_object, raw_objects),
        ("csr_parse", "engine", parse_csr, pems),
        ("signature_verify", "csr_parse", verify, ders),
        ("csr_read", "csr_parse", read, pems),
        ("engine", "", lambda r: evaluate(r, policies, options), requests),
        # Right after `engine`, on the same slice: every CSR is in the parse cache now, so this
        # is the checks timed themselves (plus the cache's digest and lookup), not a difference.
        ("engine_parsed", "engine", lambda r: evaluate(r, policies, options), requests),
        ("response_build", "", lambda p: build_response(p[0].uid, p[1]), pairs),
        ("response_encode", "", encode, pairs),
        ("metrics", "", observe, pairs),
        ("logging", "", log, pairs),
    ]
    results: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Each pass, and the warm-up, gets its own interleaved slice of the corpus when it
            # is large enough, so a cache keyed on the review (engine's parse cache) never
            # hits: a CREATE review arrives once. Caches filled while setting up are emptied.
            parts = repeats + 1 if len(bodies) >= 200 * (repeats + 1) else 1
            slices = [list(range(len(bodies)))[k::parts] for k in range(parts)]
            clear_caches()
            for _, _, function, items in phases:
                _durations(function, [items[i] for i in slices[-1][:100]])  # warm-up
            passes: dict[str, list[tuple[list[int], list[float]]]] = {n: [] for n, *_ in phases}
            for number in range(repeats):
                chosen = slices[number % parts]
                # Passes interleave the phases, so a drift in the machine's speed (it is
                # shared) touches every phase alike instead of whichever phase was running.
                for name, _, function, items in phases:
                    timed = _durations(function, [items[i] for i in chosen])
                    passes[name].append((chosen, timed))
            for name, within, _, _ in phases:
                means = [statistics.fmean(t) * 1e6 for _, t in passes[name]]
                middle = sorted(range(len(means)), key=means.__getitem__)[len(means) // 2]
                by_kind: dict[str, list[float]] = {}
                chosen, timed = passes[name][middle]
                for index, seconds in zip(chosen, timed, strict=True):
                    by_kind.setdefault(kinds[index], []).append(seconds)
                results[name] = {
                    "us": statistics.median(means),
                    "within": within,
                    "passes_us": means,
                    "reviews_per_pass": len(slices[0]),
                    "by_kind_us": {
                        k: statistics.fmean(v) * 1e6 for k, v in sorted(by_kind.items())
                    },
                }
    finally:
        cleanup.close()
    if results["engine_parsed"]["reviews_per_pass"] > PARSE_CACHE.max_entries:
        results["engine_parsed"]["us"] = float("nan")  # the slice outgrew the cache: misses
    checks = results["engine"]["us"] - results["csr_parse"]["us"]
    results["checks"] = {"us": checks, "within": "engine", "derived": True, "by_kind_us": {}}
    results["csr_parse_without_verify"] = {
        "us": results["csr_parse"]["us"] - results["signature_verify"]["us"],
        "within": "csr_parse",
        "derived": True,
        "by_kind_us": {},
    }
    results["encode_and_log"] = {
        "us": results["response_encode"]["us"] + results["logging"]["us"],
        "within": "",
        "derived": True,
        "by_kind_us": {},
    }
    results["total_app"] = {
        "us": sum(
            results[n]["us"]
            for n in (
                "review_parse",
                "engine",
                "response_build",
                "response_encode",
                "metrics",
                "logging",
            )
        ),
        "within": "",
        "derived": True,
        "by_kind_us": {},
    }
    return results


ORDER = (
    ("review_parse", "JSON decode + AdmissionReview parse"),
    ("json_decode", "  of which JSON decode (json.loads)"),
    ("object_parse", "  of which CSR object parse (base64, fields)"),
    ("engine", "engine.evaluate (everything below)"),
    ("csr_parse", "  CSR parse (PEM, DER, extensions, verify)"),
    ("signature_verify", "    of which signature verify"),
    ("csr_parse_without_verify", "    of which the rest of CSR parse"),
    ("csr_read", "      the rest timed alone (PEM + reader)"),
    ("checks", "  policy checks (engine - CSR parse)"),
    ("engine_parsed", "  the checks timed alone (CSR parse cached)"),
    ("response_build", "response build (build_response)"),
    ("response_encode", "response encode (encode_response)"),
    ("metrics", "metrics (multiprocess counters+histogram)"),
    ("logging", "decision log line (JSON to /dev/null)"),
    ("encode_and_log", "response encode + decision log"),
    ("total_app", "total in the app (no HTTP, TLS, gunicorn)"),
)


def format_table(results: dict[str, Any]) -> str:
    kinds = sorted({k for r in results.values() for k in r.get("by_kind_us", {})})
    head = f"{'phase':44} {'us/review':>10}" + "".join(f" {k:>11}" for k in kinds)
    lines = [head, "-" * len(head)]
    for key, label in ORDER:
        row = results[key]
        cells = "".join(f" {row['by_kind_us'].get(k, float('nan')):11.1f}" for k in kinds)
        if not row["by_kind_us"]:
            cells = "".join(f" {'':11}" for _ in kinds)
        lines.append(f"{label:44} {row['us']:10.1f}{cells}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.micro", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--reviews", type=int, default=4000, help="corpus size (default 4000)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per phase (default 3)")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"key mix (default {DEFAULT_MIX})")
    parser.add_argument("--corpus", type=Path, help="reviews.jsonl to use instead of building one")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.corpus:
        bodies = args.corpus.read_bytes().splitlines()
        kinds = [_kind_of(b) for b in bodies]
    else:
        corpus = build_corpus(args.reviews, parse_mix(args.mix))
        bodies, kinds = corpus.bodies(), corpus.kinds
    results = measure(bodies, kinds, args.repeats)
    print(json.dumps(results, indent=1) if args.json else format_table(results))
    return 0


def _kind_of(body: bytes) -> str:
    """The key kind of a corpus review's CSR (for a corpus read back from a file)."""
    import base64  # noqa: PLC0415

    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415

    pem = base64.b64decode(json.loads(body)["request"]["object"]["spec"]["request"])
    key = x509.load_pem_x509_csr(pem).public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(key.curve.name, "ecdsa")
    return "other"


if __name__ == "__main__":
    sys.exit(main())
