"""bench.instructions (issue 17, point 3): its child sends every scope's reviews through this
tree's webhook, and on real callgrind runs the total is read alike from the out-file and from
stderr, and the subtraction of two runs gives the cost of one loop iteration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import instructions
from bench.corpus import DEFAULT_MIX, build_corpus, parse_mix

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None,
    reason="valgrind is not installed (Debian: apt-get install -y valgrind); "
    "bench.instructions counts instructions with it",
)
ROOT = Path(instructions.__file__).resolve().parent.parent


def _loop(count: int) -> list[str]:
    return [sys.executable, "-S", "-c", f"for _ in range({count}): pass"]


def _env(count: int) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("instructions") / "reviews.jsonl"
    bodies = build_corpus(4, parse_mix(DEFAULT_MIX)).bodies()
    path.write_bytes(b"".join(body + b"\n" for body in bodies))
    return path


@pytest.mark.parametrize("scope", instructions.SCOPES)
def test_child_sends_every_review_of_a_scope_through_this_tree(
    scope: str, corpus: Path, tmp_path: Path
) -> None:
    (tmp_path / "metrics").mkdir()
    done = subprocess.run(
        instructions.child_command(scope, corpus, prepared=3, warmup=1, send=2),
        env=instructions.child_env(ROOT, tmp_path / "metrics"),
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    summary = json.loads(done.stdout.decode().splitlines()[-1])
    assert summary == {
        "scope": scope,
        "webhook": str(ROOT / "webhook"),
        "sent": 2,
        "allowed": 2,
        "warm_up_allowed": 1,
    }


def test_child_names_a_corpus_too_small_for_its_batch(tmp_path: Path) -> None:
    corpus = tmp_path / "reviews.jsonl"
    corpus.write_bytes(b"{}\n{}\n")
    done = subprocess.run(
        instructions.child_command("parse", corpus, prepared=3, warmup=1, send=2),
        env=instructions.child_env(ROOT, tmp_path),
        capture_output=True,
    )
    assert done.returncode != 0
    assert f"{corpus}: 2 reviews, 3 + 1 warm-up needed" in done.stderr.decode()


@needs_valgrind
def test_total_of_a_real_run_reads_alike_from_out_file_and_stderr(tmp_path: Path) -> None:
    out_file = tmp_path / "callgrind.out"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *_loop(10)],
        env=_env(10),
        capture_output=True,
        check=True,
    )
    from_file = instructions.read_total(out_file)
    assert from_file == instructions.read_total(tmp_path / "absent", done.stderr)
    assert from_file > 1_000_000  # an interpreter start-up, at least
    with pytest.raises(instructions.MeasureError, match="no totals line"):
        instructions.read_total(tmp_path / "absent", b"")


@needs_valgrind
def test_difference_of_two_runs_is_the_cost_of_one_loop_iteration(tmp_path: Path) -> None:
    short = instructions.per_item(_loop, _env, (1_000, 21_000), tmp_path)
    longer, _ = instructions.callgrind(_loop(41_000), _env(41_000), tmp_path)
    assert short.small.ir < short.large.ir < longer
    # The start-up (millions of instructions) is gone from the difference: what is left is a
    # few hundred instructions an iteration, the same whether 20 000 or 40 000 of them ran.
    assert 10 < short.ir_per_item < 2_000, short
    per_iteration = (longer - short.small.ir) / 40_000
    assert per_iteration == pytest.approx(short.ir_per_item, rel=0.01), (short, longer)


@needs_valgrind
def test_failing_command_is_reported_with_its_exit_status(tmp_path: Path) -> None:
    command = [sys.executable, "-S", "-c", "raise SystemExit(3)"]
    with pytest.raises(instructions.MeasureError, match="exited 3"):
        instructions.callgrind(command, _env(0), tmp_path)
