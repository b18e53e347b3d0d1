"""`make bench`: the real csr-webhook server against a no-op Flask webhook on the identical
gunicorn/TLS/keep-alive configuration, in alternating rounds (A B B A ...) on one machine.

Reports per configuration: server CPU seconds per review (master + workers + reaped children,
from /proc), throughput and p50/p99 latency under wrk's closed loop, latency at fixed offered
rates (open loop, bench/loadgen.py, measured from each request's scheduled time), the real/no-op
ratios, and a per-phase micro-benchmark of one review (bench/micro.py). Writes every round and
the summary as JSON (--out) and can compare with an earlier JSON (--compare).

Needs wrk (Debian: `apt-get update && apt-get install -y wrk`). Debian has no wrk2, so the
fixed-rate rounds use the Python open-loop client instead of `wrk -R`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from http.client import HTTPSConnection
from pathlib import Path
from typing import Any

from bench import loadgen, procstat
from bench.compare import balance, balance_text, compare_text
from bench.corpus import DEFAULT_MIX, POLICY_DIR, build_corpus, check_all_allowed, parse_mix

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
CONFIGS = ("real", "noop")
# --real: what the "real" column runs, when it is not csr-webhook itself.
REAL_COLUMN = {
    "server": None,
    "floor": "the floor server: csr-webhook with its engine replaced by the signature check alone",
    "verify": "the no-op that also checks the signature, and nothing else",
}
REVIEW_PATH = "/validate?timeout=10s"
WRK_MISSING = """\
bench: wrk is not installed (the closed-loop rounds need it).
  Debian/Ubuntu:  apt-get update && apt-get install -y wrk
  (wrk2 is not packaged by Debian; the fixed-rate rounds use bench/loadgen.py instead)"""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(name: str) -> list[str]:
    if name == "noop":
        return [sys.executable, "-m", "bench.noop_app"]
    cli = Path(sys.executable).parent / "csr-webhook"
    return [str(cli), "serve"] if cli.exists() else [sys.executable, "-m", "webhook.cli", "serve"]


def start_server(
    name: str,
    workdir: Path,
    *,
    cert: Path,
    key: Path,
    workers: int,
    threads: int,
    work: str | None = None,
) -> Server:
    """`work` ("floor", "verify"): bench.noop_app with BENCH_NOOP_WORK=work (its docstring)."""
    port = _free_port()
    args = [
        *server_command("noop" if work else name),
        "--policies", str(POLICY_DIR),
        "--bind", f"127.0.0.1:{port}",
        "--metrics-bind", f"127.0.0.1:{_free_port()}",
        "--tls-cert", str(cert),
        "--tls-key", str(key),
        "--workers", str(workers),
        "--threads", str(threads),
    ]  # fmt: skip
    log = workdir / f"{name}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CSR_WEBHOOK_")}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment.pop("BENCH_NOOP_WORK", None)
    if work:
        environment["BENCH_NOOP_WORK"] = work
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=environment
        )
    server = Server(name, process, port, log)
    wait_ready(server, workers)
    return server


def wait_ready(server: Server, workers: int, seconds: float = 30.0) -> None:
    context = loadgen.client_context()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"bench: {server.name} server exited:\n{server.log.read_text()}")
        try:
            connection = HTTPSConnection("127.0.0.1", server.port, context=context, timeout=5)
            connection.request("GET", "/readyz")
            ok = connection.getresponse().status == 200
            connection.close()
            if ok and len(procstat.children(server.process.pid)) >= workers:
                return
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: {server.name} server not ready after {seconds}s")


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent not idle (from /proc/stat), for the noise estimate."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / procstat.TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    server: Server, corpus: Path, seconds: float, connections: int, threads: int
) -> dict[str, Any]:
    args = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "30s", "-s", str(WRK_SCRIPT), f"https://127.0.0.1:{server.port}",
        "--", str(corpus), REVIEW_PATH,
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return result
    raise SystemExit(f"bench: wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def abba(rounds: int) -> list[str]:
    """A B B A A B B A ... with `rounds` rounds of each configuration."""
    return [("real", "noop", "noop", "real")[i % 4] for i in range(2 * rounds)]


def closed_round(
    server: Server, corpus: Path, seconds: float, connections: int, threads: int
) -> dict[str, Any]:
    workers = procstat.children(server.process.pid)
    busy0, client0 = machine_busy_seconds(), children_cpu()
    split0 = procstat.worker_cpu_seconds(server.process.pid)
    cpu0 = procstat.tree_cpu_seconds(server.process.pid)
    result = run_wrk(server, corpus, seconds, connections, threads)
    cpu1 = procstat.tree_cpu_seconds(server.process.pid)
    split1 = procstat.worker_cpu_seconds(server.process.pid)
    busy1, client1 = machine_busy_seconds(), children_cpu()
    requests = result["requests"]
    errors = sum(result["errors"].values())
    duration = result["duration_us"] / 1e6
    server_cpu, client_cpu = cpu1 - cpu0, client1 - client0
    return {
        "config": server.name,
        "kind": "closed",
        "seconds": duration,
        "requests": requests,
        "errors": errors,
        "not_allowed": result["not_allowed"],
        "rps": requests / duration,
        "p50_ms": result["latency_us"]["p50"] / 1000,
        "p90_ms": result["latency_us"]["p90"] / 1000,
        "p99_ms": result["latency_us"]["p99"] / 1000,
        "max_ms": result["latency_us"]["max"] / 1000,
        "server_cpu_s": server_cpu,
        "cpu_ms_per_review": server_cpu / requests * 1000 if requests else float("nan"),
        "server_cores": server_cpu / duration,
        "client_cpu_s": client_cpu,
        "other_cores": max(0.0, (busy1 - busy0) - server_cpu - client_cpu) / duration,
        "workers_stable": workers == procstat.children(server.process.pid),
        "worker_split": procstat.shares(split0, split1),
    }


def rate_round(
    server: Server, bodies: Sequence[bytes], rate: float, seconds: float
) -> dict[str, Any]:
    workers = procstat.children(server.process.pid)
    busy0, client0 = machine_busy_seconds(), self_cpu()
    split0 = procstat.worker_cpu_seconds(server.process.pid)
    cpu0 = procstat.tree_cpu_seconds(server.process.pid)
    run = loadgen.open_loop(
        "127.0.0.1", server.port, bodies, [(rate, seconds)], path=REVIEW_PATH,
        warm_connections=16, max_connections=512,
    )  # fmt: skip
    cpu1 = procstat.tree_cpu_seconds(server.process.pid)
    split1 = procstat.worker_cpu_seconds(server.process.pid)
    busy1, client1 = machine_busy_seconds(), self_cpu()
    stats = loadgen.summary(run)
    server_cpu, client_cpu = cpu1 - cpu0, client1 - client0
    return {
        "config": server.name,
        "kind": "rate",
        "rate": rate,
        "seconds": run.elapsed,
        "requests": len(run.samples),
        "errors": stats["errors"],
        "achieved_rps": stats["ok"] / run.elapsed,
        "p50_ms": stats["p50_ms"],
        "p90_ms": stats["p90_ms"],
        "p99_ms": stats["p99_ms"],
        "max_ms": stats["max_ms"],
        "late_sends": run.late_sends,
        "connections": run.connections_opened,
        "server_cpu_s": server_cpu,
        "cpu_ms_per_review": server_cpu / len(run.samples) * 1000,
        "client_cpu_s": client_cpu,
        "other_cores": max(0.0, (busy1 - busy0) - server_cpu - client_cpu) / run.elapsed,
        "workers_stable": workers == procstat.children(server.process.pid),
        "worker_split": procstat.shares(split0, split1),
    }


def balanced(
    measure: Callable[[], dict[str, Any]], number: int, skew: float, retries: int
) -> list[dict[str, Any]]:
    """Run a round; run it again (up to `retries` times) while one worker did more than `skew`
    of the work. gunicorn's workers race to accept connections and one often takes them all:
    such a round measures one worker, not the server. Every attempt is kept; the summary uses
    the balanced ones (and says how often a round was skewed)."""
    attempts = []
    for _ in range(retries + 1):
        row = measure() | {"round": number}
        row["skewed"] = bool(row["worker_split"]) and row["worker_split"][0] > skew
        attempts.append(row)
        what = "closed" if row["kind"] == "closed" else f"{row['rate']:g}/s"
        split = "/".join(f"{share * 100:.0f}" for share in row["worker_split"])
        print(
            f"bench: {what} {row['config']}: {row.get('rps', row.get('achieved_rps', 0)):.0f}/s "
            f"{row['cpu_ms_per_review']:.3f} ms CPU/review p99 {row['p99_ms']:.1f} ms "
            f"split {split}" + (" (skewed, again)" if row["skewed"] else ""),
            file=sys.stderr,
        )
        if not row["skewed"]:
            break
    return attempts


def preflight(
    servers: dict[str, Server], corpus: list[dict[str, Any]], bodies: list[bytes]
) -> None:
    """Every review once through each server: the real one must allow each, both echo the uid."""
    for name, server in servers.items():
        run = loadgen.closed_loop(
            "127.0.0.1", server.port, bodies, 8, 120, path=REVIEW_PATH,
            keep_bodies=True, requests=len(bodies),
        )  # fmt: skip
        bad = []
        for sample in run.samples:
            review = corpus[sample.index % len(corpus)]
            answer = json.loads(sample.body or b"null") if sample.status == 200 else None
            response = (answer or {}).get("response", {})
            if (
                response.get("uid") != review["request"]["uid"]
                or response.get("allowed") is not True
            ):
                bad.append((sample.status, sample.error, (sample.body or b"")[:300]))
        if bad or len(run.samples) != len(bodies):
            raise SystemExit(f"bench: {name} server answered {len(bad)} reviews wrongly: {bad[:3]}")


def chosen_attempts(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per round, its balanced attempt, or its last one when every attempt was skewed."""
    attempts: dict[tuple[str, object, int], list[dict[str, Any]]] = {}
    for row in rows:
        attempts.setdefault((row["kind"], row.get("rate"), row["round"]), []).append(row)
    return [next((r for r in group if not r["skewed"]), group[-1]) for group in attempts.values()]


def _median(rows: Sequence[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows]
    return statistics.median(values) if values else float("nan")


def summarise(all_rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for config in CONFIGS:
        mine = [r for r in all_rounds if r["config"] == config]
        rounds = chosen_attempts(mine)
        closed = [r for r in rounds if r["kind"] == "closed"]
        entry: dict[str, Any] = {
            key: _median(closed, key)
            for key in ("cpu_ms_per_review", "rps", "p50_ms", "p90_ms", "p99_ms", "other_cores")
        }
        entry["cpu_ms_per_review_range"] = [
            min(r["cpu_ms_per_review"] for r in closed),
            max(r["cpu_ms_per_review"] for r in closed),
        ]
        entry["rates"] = {}
        for rate in sorted({r["rate"] for r in rounds if r["kind"] == "rate"}):
            rows = [
                r
                for r in rounds
                if r["config"] == config and r["kind"] == "rate" and r["rate"] == rate
            ]
            entry["rates"][str(int(rate))] = {
                key: _median(rows, key)
                for key in (
                    "p50_ms",
                    "p90_ms",
                    "p99_ms",
                    "max_ms",
                    "cpu_ms_per_review",
                    "achieved_rps",
                )
            } | {
                "late_sends": sum(r["late_sends"] for r in rows),
                "errors": sum(r["errors"] for r in rows),
            }
        entry["balance"] = balance(mine, config)
        entry["skewed_attempts"] = sum(1 for r in mine if r.get("skewed"))
        entry["attempts"] = len(mine)
        skewed = [r for r in mine if r["kind"] == "closed" and r.get("skewed")]
        entry["skewed_closed"] = {
            key: _median(skewed, key) for key in ("cpu_ms_per_review", "rps", "p99_ms")
        } | {"rounds": len(skewed)}
        summary[config] = entry
    real, noop = summary["real"], summary["noop"]
    summary["ratio"] = {
        key: real[key] / noop[key] if noop[key] else float("nan")
        for key in ("cpu_ms_per_review", "rps", "p50_ms", "p99_ms")
    }
    return summary


def machine_facts() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = {}
    for package in ("cryptography", "flask", "werkzeug", "gunicorn", "prometheus-client"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "?"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": subprocess.run(
            ["wrk", "-v"], capture_output=True, text=True, check=False
        ).stdout.split("\n")[0],
        "commit": commit,
    }


def _row(label: str, real: float, noop: float, fmt: str, ratio: bool = True) -> str:
    text = f"  {label:36}{real:10{fmt}}{noop:10{fmt}}"
    if ratio:
        text += f"{real / noop if noop else float('nan'):11.2f}x"
    return text


def format_report(data: dict[str, Any]) -> str:
    s, settings, machine = data["summary"], data["settings"], data["machine"]
    real, noop = s["real"], s["noop"]
    (real_low, real_high), (noop_low, noop_high) = (
        real["cpu_ms_per_review_range"],
        noop["cpu_ms_per_review_range"],
    )
    shown = REAL_COLUMN.get(settings.get("real", "server"))
    floor_note = [f"real = {shown} (bench/noop_app.py)"] if shown else []
    lines = [
        f"csr-webhook benchmark {data['date']}  commit {machine['commit']}  "
        f"{machine['cpus']} CPUs ({machine['cpu_model']})",
        f"server: {settings['workers']} workers x {settings['threads']} threads, TLS, keep-alive; "
        f"{settings['reviews']} distinct CSRs ({settings['mix']}); rounds alternate A B B A",
        *floor_note,
        "",
        f"{'':38}{'real':>10}{'no-op':>10}{'real/no-op':>12}",
        f"closed loop: wrk -t{settings['wrk_threads']} -c{settings['connections']}, "
        f"{settings['rounds']} x {settings['seconds']:g} s per config (medians)",
        _row("server CPU ms/review", real["cpu_ms_per_review"], noop["cpu_ms_per_review"], ".3f"),
        _row("throughput reviews/s", real["rps"], noop["rps"], ".0f"),
        _row("p50 latency ms", real["p50_ms"], noop["p50_ms"], ".2f"),
        _row("p99 latency ms", real["p99_ms"], noop["p99_ms"], ".2f"),
        _row("  lowest round", real_low, noop_low, ".3f", ratio=False),
        _row("  highest round", real_high, noop_high, ".3f", ratio=False),
        _row(
            "other load on the machine, cores",
            real["other_cores"],
            noop["other_cores"],
            ".2f",
            False,
        ),
    ]
    for rate, real_rate in real["rates"].items():
        noop_rate = noop["rates"][rate]
        lines.append(
            f"fixed rate {rate}/s open loop (from scheduled time), "
            f"{settings['rate_rounds']} x {settings['rate_seconds']:g} s per config (medians)"
        )
        for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
            label = f"{key.removesuffix('_ms')} latency ms"
            lines.append(_row(label, real_rate[key], noop_rate[key], ".2f"))
        lines.append(
            _row("server CPU ms/review", real_rate["cpu_ms_per_review"],
                 noop_rate["cpu_ms_per_review"], ".3f")
        )  # fmt: skip
        lines.append(
            _row("late sends (>10 ms behind schedule)", real_rate["late_sends"],
                 noop_rate["late_sends"], ".0f", False)
        )  # fmt: skip
        lines.append(_row("errors", real_rate["errors"], noop_rate["errors"], ".0f", False))
    real_skew, noop_skew = real["skewed_closed"], noop["skewed_closed"]
    lines.append(
        f"closed-loop attempts where one worker took (nearly) every connection: "
        f"real {real_skew['rounds']}, no-op {noop_skew['rounds']} (medians)"
    )
    if real_skew["rounds"] and noop_skew["rounds"]:
        lines += [
            _row("  server CPU ms/review", real_skew["cpu_ms_per_review"],
                 noop_skew["cpu_ms_per_review"], ".3f"),
            _row("  throughput reviews/s", real_skew["rps"], noop_skew["rps"], ".0f"),
            _row("  p99 latency ms", real_skew["p99_ms"], noop_skew["p99_ms"], ".2f"),
        ]  # fmt: skip
    elif real_skew["rounds"]:
        lines.append(
            f"  real: {real_skew['rps']:.0f} reviews/s, "
            f"{real_skew['cpu_ms_per_review']:.3f} ms CPU/review, p99 {real_skew['p99_ms']:.2f} ms"
        )
    lines.append(
        f"skewed attempts, all kinds: real {real['skewed_attempts']} of {real['attempts']}, "
        f"no-op {noop['skewed_attempts']} of {noop['attempts']}; the figures above use each "
        f"round's balanced attempt, or its last (bench/README.md)"
    )
    lines.append(
        "busiest worker's share of the work, median of all attempts (skewed attempts): "
        f"real {balance_text(data['rounds'], 'real')}; "
        f"no-op {balance_text(data['rounds'], 'noop')}"
    )
    lines += ["", "rounds:"]
    for r in data["rounds"]:
        what = "closed" if r["kind"] == "closed" else f"{r['rate']:g}/s"
        throughput = r.get("rps", r.get("achieved_rps", 0))
        lines.append(
            f"  {r['config']:5} {what:>7} {r['requests']:7d} req {throughput:7.0f}/s "
            f"cpu {r['cpu_ms_per_review']:6.3f} ms/review  p50 {r['p50_ms']:7.2f}  "
            f"p99 {r['p99_ms']:7.2f} ms  other {r['other_cores']:.2f} cores  "
            f"split {'/'.join(f'{share * 100:.0f}' for share in r['worker_split'])}"
            + ("  SKEWED" if r.get("skewed") else "")
            + ("" if r["workers_stable"] else "  WORKERS CHANGED")
            + (f"  errors {r['errors']}" if r["errors"] else "")
        )
    if data.get("micro"):
        from bench.micro import format_table  # noqa: PLC0415

        lines += ["", "per-phase micro-benchmark of one review (in-process, us):"]
        lines.append(format_table(data["micro"]))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--rounds", type=int, default=4, help="closed-loop rounds per config (default 4)")
    add("--seconds", type=float, default=8, help="seconds per closed-loop round (default 8)")
    add("--connections", type=int, default=8, help="wrk connections (default 8 = 2 x 4 threads)")
    add("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    add("--rates", default="200,500", help="fixed offered rates, reviews/s (default 200,500)")
    add("--rate-rounds", type=int, default=2, help="rounds per config per rate (default 2)")
    add("--rate-seconds", type=float, default=6, help="seconds per fixed-rate round (default 6)")
    add("--workers", type=int, default=2, help="gunicorn workers, both servers (default 2)")
    add("--threads", type=int, default=4, help="threads per worker, both servers (default 4)")
    add("--reviews", type=int, default=4000, help="distinct CSRs in the corpus (default 4000: "
        "over twice any cache keyed on the review, so cycling in order never hits it)")  # fmt: skip
    add("--mix", default=DEFAULT_MIX, help=f"key kinds and shares (default {DEFAULT_MIX})")
    add("--micro-repeats", type=int, default=3, help="micro-benchmark passes (0 skips it)")
    add("--warmup", type=float, default=3, help="seconds of unmeasured wrk load per server")
    add("--skew", type=float, default=0.75, help="a round where one worker did more than this "
        "share of the work is run again (default 0.75)")  # fmt: skip
    add("--skew-retries", type=int, default=3, help="times a skewed round is run again (default 3)")
    add("--quick", action="store_true", help="smoke run: 2 short rounds of everything")
    add("--out", type=Path, help="JSON results file (default: a new file under $TMPDIR)")
    add("--compare", type=Path, help="an earlier --out file to compare this run with")
    add("--keep", action="store_true", help="keep the work directory (server logs, corpus)")
    add("--real", choices=tuple(REAL_COLUMN), default="server", help="what the 'real' column "
        "runs: csr-webhook (default); floor: the real server with its policy engine replaced by "
        "the signature check alone; verify: the no-op plus the signature check "
        "(bench/noop_app.py)")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if shutil.which("wrk") is None:
        print(WRK_MISSING, file=sys.stderr)
        return 2
    if args.quick:
        args.rounds, args.seconds, args.rate_rounds, args.rate_seconds = 1, 3, 1, 3
        args.micro_repeats, args.warmup = min(args.micro_repeats, 1), 1
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="csr-webhook-bench-"))
    out = args.out or Path(tempfile.mkstemp(prefix="csr-webhook-bench-", suffix=".json")[1])
    started = time.monotonic()
    loadavg_start = Path("/proc/loadavg").read_text().split()[:3]
    print(f"bench: building {args.reviews} CSRs ({args.mix}) in {workdir}", file=sys.stderr)
    corpus = build_corpus(args.reviews, parse_mix(args.mix))
    check_all_allowed(corpus)
    corpus_file = corpus.write(workdir)
    bodies = corpus.bodies()
    from webhook.serving.devcert import generate_dev_certificate  # noqa: PLC0415

    cert, key = generate_dev_certificate(workdir)
    servers: dict[str, Server] = {}
    rounds: list[dict[str, Any]] = []
    try:
        for name in CONFIGS:
            servers[name] = start_server(
                name,
                workdir,
                cert=cert,
                key=key,
                workers=args.workers,
                threads=args.threads,
                work=args.real if name == "real" and args.real != "server" else None,
            )
        print("bench: preflight (every review once through each server)", file=sys.stderr)
        preflight(servers, corpus.reviews, bodies)
        for server in servers.values():
            run_wrk(server, corpus_file, args.warmup, args.connections, args.wrk_threads)
        for number, name in enumerate(abba(args.rounds)):
            closed = partial(
                closed_round, servers[name], corpus_file, args.seconds, args.connections,
                args.wrk_threads,
            )  # fmt: skip
            rounds += balanced(closed, number, args.skew, args.skew_retries)
        for rate in rates:
            for number, name in enumerate(abba(args.rate_rounds)):
                fixed = partial(rate_round, servers[name], bodies, rate, args.rate_seconds)
                rounds += balanced(fixed, number, args.skew, args.skew_retries)
    finally:
        codes = {name: server.stop() for name, server in servers.items()}
    micro = None
    if args.micro_repeats > 0:
        print("bench: per-phase micro-benchmark", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, "-m", "bench.micro", "--json", "--corpus", str(corpus_file),
             "--repeats", str(args.micro_repeats)],
            capture_output=True, text=True, cwd=ROOT, check=True,
        )  # fmt: skip
        micro = json.loads(done.stdout)
    data: dict[str, Any] = {
        "format": 1,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_facts(),
        "settings": vars(args) | {"rates": rates, "out": str(out), "compare": str(args.compare)},
        "command": " ".join([Path(sys.executable).name, "-m", "bench", *(argv or sys.argv[1:])]),
        "elapsed_s": time.monotonic() - started,
        "server_exit_codes": codes,
        "rounds": rounds,
        "summary": summarise(rounds),
        "micro": micro,
    }
    data["machine"]["loadavg_start"] = loadavg_start
    data["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    out.write_text(json.dumps(data, indent=1, default=str) + "\n")
    print(format_report(data))
    if args.compare:
        print()
        print(compare_text(json.loads(args.compare.read_text()), data, str(args.compare), str(out)))
    print(f"\nresults: {out}")
    if args.keep:
        print(f"work directory (server logs, corpus): {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = [r for r in rounds if r["errors"] or r.get("not_allowed")]
    if failed:
        print(f"bench: {len(failed)} round(s) had errors or denials", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
