"""Where engine.evaluate spends its time: cProfile over the benchmark corpus, in-process.

    python -m bench.profile [--reviews 500] [--top 25] [--sort tottime|cumulative]

The micro-benchmark (bench/micro.py) says how much each phase costs; this says which functions
inside the phases. cProfile's own overhead inflates small, frequently called functions.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import warnings
from collections.abc import Sequence

from bench.corpus import DEFAULT_MIX, POLICY_DIR, build_corpus, parse_mix


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--reviews", type=int, default=500)
    parser.add_argument("--mix", default=DEFAULT_MIX)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    args = parser.parse_args(argv)

    from webhook.admission import parse_review  # noqa: PLC0415
    from webhook.engine import EngineOptions, evaluate  # noqa: PLC0415
    from webhook.policy.loader import load_policies  # noqa: PLC0415

    policies = load_policies([POLICY_DIR]).policy_set
    assert policies is not None
    requests = [parse_review(b) for b in build_corpus(args.reviews, parse_mix(args.mix)).bodies()]
    options = EngineOptions()
    profiler = cProfile.Profile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profiler.enable()
        for request in requests:
            evaluate(request, policies, options)
        profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
