"""Compare two `python -m bench --out` files: the headline numbers side by side.

    python -m bench.compare BEFORE.json AFTER.json

CPU per review is the figure to trust on a shared machine (it does not depend on what else
ran); throughput and latency move with the machine's other load, shown as "other cores".
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROWS = (
    ("cpu_ms_per_review", "server CPU ms/review", "{:.3f}"),
    ("rps", "closed-loop reviews/s", "{:.0f}"),
    ("p50_ms", "closed-loop p50 ms", "{:.2f}"),
    ("p99_ms", "closed-loop p99 ms", "{:.2f}"),
    ("other_cores", "other load, cores", "{:.2f}"),
)
MICRO = ("review_parse", "csr_parse", "signature_verify", "checks", "engine", "response_encode",
         "metrics", "logging", "total_app")  # fmt: skip


def balance(rounds: Sequence[dict[str, Any]], config: str) -> dict[str, dict[str, float]]:
    """Per kind of round ("closed", or the rate as text): over every attempt of `config`, the
    median busiest worker's share of the work (in %), how many attempts were skewed and how
    many there were. Every attempt counts, the skewed ones too: they show the balance."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for row in rounds:
        if row["config"] == config and row["worker_split"]:
            kind = "closed" if row["kind"] == "closed" else str(int(row["rate"]))
            kinds.setdefault(kind, []).append(row)
    return {
        kind: {
            "busiest_pct": statistics.median(r["worker_split"][0] for r in rows) * 100,
            "skewed": sum(1 for r in rows if r.get("skewed")),
            "attempts": len(rows),
        }
        for kind, rows in kinds.items()
    }


def balance_text(rounds: Sequence[dict[str, Any]], config: str) -> str:
    """E.g. "closed 52 % (1 of 5 skewed), 500/s 55 % (0 of 2)"."""
    parts = []
    for kind, b in balance(rounds, config).items():
        what = kind if kind == "closed" else f"{kind}/s"
        parts.append(
            f"{what} {b['busiest_pct']:.0f} % ({b['skewed']:.0f} of {b['attempts']:.0f} skewed)"
        )
    return ", ".join(parts)


def _change(before: float, after: float) -> str:
    if not before or math.isnan(before) or math.isnan(after):
        return ""
    return f"{(after - before) / before * 100:+.1f}%"


def _heading(label: str, path: str, result: dict[str, Any]) -> str:
    """One file's line: its date and commit, and what its "real" column ran when that was not
    csr-webhook (python -m bench --real)."""
    real = result.get("settings", {}).get("real", "server")
    column = "" if real == "server" else f", real column: --real {real}"
    commit = result["machine"].get("commit", "?")
    return f"{label} {path} ({result['date']}, commit {commit}{column})"


def compare_text(before: dict[str, Any], after: dict[str, Any], a: str, b: str) -> str:
    lines = [_heading("before:", a, before), _heading("after: ", b, after)]
    lines.append(f"{'':34}{'before':>10}{'after':>10}{'change':>10}")
    for config in ("real", "noop"):
        lines.append(f"{config}:")
        old, new = before["summary"][config], after["summary"][config]
        for key, label, fmt in ROWS:
            lines.append(
                f"  {label:32}{fmt.format(old[key]):>10}{fmt.format(new[key]):>10}"
                f"{_change(old[key], new[key]):>10}"
            )
        for rate, new_rate in new["rates"].items():
            old_rate = old["rates"].get(rate)
            if old_rate is None:
                continue
            for key in ("p50_ms", "p99_ms"):
                label = f"{rate}/s {key.removesuffix('_ms')} ms"
                lines.append(
                    f"  {label:32}{old_rate[key]:10.2f}{new_rate[key]:10.2f}"
                    f"{_change(old_rate[key], new_rate[key]):>10}"
                )
    lines.append("busiest worker's share of the work, median of all attempts (skewed attempts):")
    for config in ("real", "noop"):
        lines.append(f"  {config} before: {balance_text(before['rounds'], config)}")
        lines.append(f"  {config} after:  {balance_text(after['rounds'], config)}")
    ratio_old, ratio_new = before["summary"]["ratio"], after["summary"]["ratio"]
    lines.append(
        f"real/no-op CPU per review: {ratio_old['cpu_ms_per_review']:.2f}x -> "
        f"{ratio_new['cpu_ms_per_review']:.2f}x"
    )
    if before.get("micro") and after.get("micro"):
        lines.append("micro-benchmark, us per review:")
        for key in MICRO:
            old_us, new_us = before["micro"][key]["us"], after["micro"][key]["us"]
            lines.append(f"  {key:32}{old_us:10.1f}{new_us:10.1f}{_change(old_us, new_us):>10}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    before, after = (json.loads(Path(p).read_text()) for p in args)
    print(compare_text(before, after, args[0], args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
