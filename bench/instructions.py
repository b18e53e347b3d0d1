"""Instructions per review (callgrind's Ir), a figure a noisy shared machine does not move.

    python -m bench.instructions [--scope app|engine|parse ...] [--rev REV ...] [--corpus FILE]

For each scope, two `valgrind --tool=callgrind` runs of bench/instructions_child.py differ only
in how many reviews they send (n1, n2); (Ir(n2) - Ir(n1)) / (n2 - n1) is the cost of one review,
with interpreter start-up, imports, policy load and warm-up subtracted out. Scopes: `app` POSTs
/validate to create_app's Flask test client (as a gunicorn worker serves it: multiprocess
metrics, decision lines to /dev/null), `engine` is engine.evaluate of a parsed review, `parse`
is parse_csr alone. Totals are read from callgrind's out-file, never from a clock.

The corpus (bench/corpus.py) is written once to .bench-cache/ and reused: ECDSA signatures are
randomised, so counts compare only on the same file. With --rev, each commit's webhook/ is
unpacked (`git archive`) to a temporary tree and measured on that file with this checkout's
bench policy; without it, this working tree is measured.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "instructions_child.py"
POLICY_DIR = Path(__file__).resolve().parent / "policies"
CACHE = ROOT / ".bench-cache"
SCOPES = ("app", "engine", "parse")
# ~3 minutes for the app scope on this 2-core VM (callgrind runs Python ~50x slower).
DEFAULT_N1, DEFAULT_N2, DEFAULT_WARMUP = 20, 120, 20
DEFAULT_SEED = 1
_TOTALS = re.compile(rb"^(?:totals|summary):\s*(\d+)", re.MULTILINE)
_COLLECTED = re.compile(rb"Collected\s*:\s*(\d+)")


class MeasureError(RuntimeError):
    """A run that gave no count: valgrind missing or failing, or the child failing."""


@dataclass(frozen=True)
class Run:
    count: int  # reviews sent (or loop iterations, for a plain command)
    ir: int
    summary: dict[str, Any]


@dataclass(frozen=True)
class PerItem:
    small: Run
    large: Run

    @property
    def ir_per_item(self) -> float:
        return (self.large.ir - self.small.ir) / (self.large.count - self.small.count)


def read_total(out_file: Path, stderr: bytes = b"") -> int:
    """Ir of a callgrind run: the out-file's `totals:` (or `summary:`) line, else the
    `Collected :` line callgrind writes on stderr."""
    found = _TOTALS.search(out_file.read_bytes()) if out_file.exists() else None
    if found is None:
        found = _COLLECTED.search(stderr)
    if found is None:
        raise MeasureError(f"{out_file}: no totals line, and no 'Collected :' on stderr")
    return int(found.group(1))


@functools.cache
def _fixed_addresses() -> list[str]:
    """`setarch -R` where it works: with the addresses randomised, glibc's realloc moved a
    block in one run and grew it in place in another, and two runs of the parse scope differed
    by 0.1 % (1.36 M of 1.45 G instructions; 0.01 % with -R)."""
    setarch = shutil.which("setarch")
    if setarch is None:
        return []
    works = subprocess.run([setarch, "-R", "true"], capture_output=True, check=False)
    return [setarch, "-R"] if works.returncode == 0 else []


def callgrind(command: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[int, bytes]:
    """Run `command` under callgrind; (total Ir, the command's stdout)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise MeasureError("valgrind not found (Debian: apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory(prefix="csr-webhook-callgrind-") as work:
        out_file = Path(work) / "callgrind.out"
        done = subprocess.run(
            [
                *_fixed_addresses(),
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={out_file}",
                *command,
            ],
            env=env,
            cwd=cwd,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-15:]
            raise MeasureError(f"{' '.join(command)} exited {done.returncode}:\n" + "\n".join(tail))
        return read_total(out_file, done.stderr), done.stdout


def per_item(
    command_for: Callable[[int], list[str]],
    env_for: Callable[[int], dict[str, str]],
    counts: tuple[int, int],
    cwd: Path,
    jobs: int = 2,
) -> PerItem:
    """Two callgrind runs, of command_for(n) in env_for(n) for n in counts, side by side when
    jobs > 1 (a count of instructions does not depend on what else the machine runs)."""

    def one(count: int) -> Run:
        ir, stdout = callgrind(command_for(count), env_for(count), cwd)
        lines = stdout.decode(errors="replace").strip().splitlines()
        summary = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
        return Run(count=count, ir=ir, summary=summary)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        small, large = pool.map(one, counts)
    return PerItem(small=small, large=large)


def child_command(scope: str, corpus: Path, prepared: int, warmup: int, send: int) -> list[str]:
    """bench/instructions_child.py by path, with -P: `webhook` then comes from PYTHONPATH, not
    from this checkout, and bench/ (whose profile.py would shadow the stdlib's) is not on the
    path."""
    sizes = [str(prepared), str(warmup), str(send)]
    return [sys.executable, "-P", str(CHILD), scope, str(POLICY_DIR), str(corpus), *sizes]


def child_env(tree: Path, multiproc_dir: Path) -> dict[str, str]:
    """The same environment for every run of a tree: hash seed fixed, no bytecode written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PROMETHEUS"))}
    env.update(
        PYTHONHASHSEED="0",
        PYTHONPATH=str(tree),
        PYTHONDONTWRITEBYTECODE="1",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir),
    )
    return env


def ensure_corpus(path: Path | None, size: int, seed: int) -> Path:
    """The given file, or the cached corpus of `size` reviews (built and written once)."""
    if path is not None:
        return path
    cached = CACHE / f"instructions-corpus-{size}-{seed}.jsonl"
    if not cached.exists():
        from bench.corpus import DEFAULT_MIX, build_corpus, parse_mix  # noqa: PLC0415

        CACHE.mkdir(exist_ok=True)
        corpus = build_corpus(size, parse_mix(DEFAULT_MIX), seed=seed)
        partial = cached.with_suffix(".partial")
        partial.write_bytes(b"".join(body + b"\n" for body in corpus.bodies()))
        partial.rename(cached)
    return cached


def measure_tree(
    tree: Path, scope: str, *, corpus: Path, counts: tuple[int, int], warmup: int, jobs: int = 2
) -> PerItem:
    """Ir per review of `scope` for the webhook package in `tree`. Its .pyc are compiled
    first, so no run pays for compiling; each run gets its own empty metrics directory."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "webhook")], check=True)
    prepared = max(counts)
    with tempfile.TemporaryDirectory(prefix="csr-webhook-instr-") as work:

        def env_for(count: int) -> dict[str, str]:
            metrics = Path(work) / f"metrics-{count:06d}"
            metrics.mkdir()
            return child_env(tree, metrics)

        def command_for(count: int) -> list[str]:
            return child_command(scope, corpus, prepared, warmup, count)

        measured = per_item(command_for, env_for, counts, tree, jobs)
    expected = str((tree / "webhook").resolve())
    for run in (measured.small, measured.large):
        if run.summary.get("webhook") != expected:
            raise MeasureError(f"measured {run.summary.get('webhook')}, expected {expected}")
        if run.summary.get("allowed") != run.count or run.summary.get("warm_up_allowed") != warmup:
            raise MeasureError(f"{scope}: {run.summary}: the bench policy must allow every review")
    return measured


@contextmanager
def checkout(rev: str | None) -> Iterator[tuple[str, Path]]:
    """(label, tree): this working tree for None, else REV's webhook/ unpacked from git."""
    if rev is None:
        yield "worktree", ROOT
        return
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode != 0:
        raise MeasureError(f"--rev {rev}: {commit.stderr.strip()}")
    with tempfile.TemporaryDirectory(prefix=f"csr-webhook-rev-{commit.stdout.strip()}-") as tree:
        archive = subprocess.run(
            ["git", "archive", commit.stdout.strip(), "webhook"],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise MeasureError(f"--rev {rev}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        yield commit.stdout.strip(), Path(tree)


def format_table(rows: list[dict[str, Any]], scopes: Sequence[str]) -> str:
    head = f"{'rev':12}" + "".join(f" {scope + ' Ir/review':>20}" for scope in scopes)
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = "".join(f" {row['scopes'][scope]['ir_per_review']:20,.0f}" for scope in scopes)
        lines.append(f"{row['rev']:12}{cells}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--scope", action="append", choices=SCOPES, help="app (default), engine, parse; repeatable"
    )
    parser.add_argument(
        "--rev", action="append", help="a commit to measure (repeatable; default: this tree)"
    )
    parser.add_argument("--corpus", type=Path, help="reviews.jsonl (default: the cached corpus)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of a new corpus")
    parser.add_argument("--n1", type=int, default=DEFAULT_N1, help=f"small batch ({DEFAULT_N1})")
    parser.add_argument("--n2", type=int, default=DEFAULT_N2, help=f"large batch ({DEFAULT_N2})")
    parser.add_argument(
        "--warmup", type=int, default=DEFAULT_WARMUP, help=f"warm-up reviews ({DEFAULT_WARMUP})"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not 0 < args.n1 < args.n2:
        parser.error("need 0 < --n1 < --n2")
    scopes = args.scope or ["app"]
    corpus = ensure_corpus(args.corpus, args.n2 + args.warmup, args.seed)
    rows = []
    try:
        for rev in args.rev or [None]:
            with checkout(rev) as (label, tree):
                row: dict[str, Any] = {"rev": label, "corpus": str(corpus), "scopes": {}}
                for scope in scopes:
                    started = time.monotonic()
                    measured = measure_tree(
                        tree,
                        scope,
                        corpus=corpus,
                        counts=(args.n1, args.n2),
                        warmup=args.warmup,
                        jobs=args.jobs,
                    )
                    row["scopes"][scope] = {
                        "ir_per_review": measured.ir_per_item,
                        "runs": [asdict(measured.small), asdict(measured.large)],
                        "wall_seconds": round(time.monotonic() - started, 1),
                    }
                    print(
                        f"{label} {scope}: {measured.ir_per_item:,.0f} Ir/review "
                        f"({row['scopes'][scope]['wall_seconds']} s)",
                        file=sys.stderr,
                    )
                rows.append(row)
    except MeasureError as error:
        print(f"bench.instructions: {error}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=1) if args.json else format_table(rows, scopes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
