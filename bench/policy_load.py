"""Time `load_policies` on the shipped policies and on one large policy, for this tree and a
baseline tree in the same run, and print the ratio.

    .venv/bin/python -m bench.policy_load BASELINE_DIR [--rounds N]

BASELINE_DIR holds another checkout's `webhook/` package (e.g. `git worktree add /tmp/base main`
or `git archive main | tar -x -C /tmp/base`). Each measurement runs in a fresh interpreter with
that tree first on `sys.path`, alternating A B B A so that drifts in the machine's load hit both
alike; the figure is the median of the best-of-5 CPU time of each round. No assertion: a report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_MEASURE = """
import json, sys, time
from pathlib import Path
from webhook.policy.loader import load_policies
paths = [Path(p) for p in sys.argv[1:]]
assert load_policies(paths).policy_set is not None, load_policies(paths).problems[:3]
best = float("inf")
for _ in range(5):
    started = time.process_time()
    load_policies(paths)
    best = min(best, time.process_time() - started)
print(json.dumps(best))
"""


def large_policy(rules: int) -> str:
    """One SignerPolicy of `rules` rules, each using most fields (about 40 YAML nodes a rule)."""
    lines = [
        "apiVersion: policy.csr-webhook.io/v1alpha1",
        "kind: SignerPolicy",
        "metadata: {name: large}",
        "spec:",
        '  signerNames: ["example.com/large"]',
        "  deny:",
        '    dnsNames: ["*.evil.example"]',
        "  rules:",
    ]
    for index in range(rules):
        lines += [
            f"    - name: r{index}",
            f'      requesters: {{groups: ["team-{index}"]}}',
            "      allowed:",
            f'        subject: {{commonName: {{values: ["svc-{index}"], required: true}}}}',
            f'        dnsNames: {{values: ["svc-{index}.example.com", "*.svc-{index}.example.com"],'
            " maxItems: 4, allowWildcardNames: true}",
            f'        ipAddresses: {{values: ["10.{index % 250}.0.0/16"]}}',
            '        usages: ["digital signature", "server auth"]',
            "      constraints:",
            '        requiredUsages: ["server auth"]',
            "        lifetime: {min: 1h, max: 30d, default: 7d, onExceed: Clamp}",
            "        keys: {rsa: {minBits: 2048}, ecdsa: {curves: [P-256]}, ed25519: true}",
        ]
    return "\n".join(lines) + "\n"


def measure(tree: Path, paths: list[Path]) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, paths)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rules", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        large = Path(scratch) / "large.yaml"
        large.write_text(large_policy(args.rules))
        cases = {
            "shipped policies/": [ROOT / "policies"],
            f"one policy of {args.rules} rules": [large],
        }
        trees = {"baseline": args.baseline.resolve(), "this tree": ROOT}
        print(f"{'case':<28} {'baseline ms':>12} {'this tree ms':>13} {'ratio':>7}")
        for case, paths in cases.items():
            times: dict[str, list[float]] = {name: [] for name in trees}
            for round_ in range(args.rounds):
                order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                for name in order:
                    times[name].append(measure(trees[name], paths))
            base, this = (statistics.median(times[name]) for name in trees)
            print(f"{case:<28} {base * 1000:>12.2f} {this * 1000:>13.2f} {this / base:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
