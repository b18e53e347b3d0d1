"""Policy loading is bounded for hostile files too: a file is measured before it is read (a
huge policy or CA bundle file costs neither `check` nor a reloading server its size in
memory, a FIFO cannot hang either), and the signer tie check decides each pair in linear time
under a work budget, naming the pair when it gives up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.server import CLI, running_server, worker_pids
from tests.test_metrics import scrape, total
from tests.test_operations import readyz, wait_for
from tests.test_policy_loader import policy
from webhook.matching.patterns import Pattern, PatternKind, compile_pattern
from webhook.policy.ties import MAX_TIE_WORK, PAIR_COST, tie_witness
from webhook.serving.reload import DirectoryFingerprint

HUGE = 200 * 1024 * 1024
# Memory a process may gain while refusing a 200 MB file: well under the file's size, far
# above the noise of one more load.
GROWTH_KIB = 40 * 1024
# Runs a command and prints its exit code, output and peak RSS (KiB) as JSON: the peak of that
# one process, not of every child the test process ever had.
MEASURE = (
    "import json, resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=300)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps([done.returncode, done.stdout + done.stderr, peak]))\n"
)


def signer_pattern(text: str) -> Pattern:
    return compile_pattern(PatternKind.SIGNER, text)


def sparse(path: Path, size: int = HUGE) -> Path:
    """A file of `size` bytes that takes no disk space (a read still yields them all)."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def measured_check(*paths: Path) -> tuple[int, str, int]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(CLI), "check", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        timeout=320,
    )
    code, output, peak = json.loads(done.stdout)
    return int(code), str(output), int(peak)


def test_check_refuses_huge_policy_and_ca_files_without_reading_them(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    (small / "p.yaml").write_text(policy("p"))
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "p.yaml").write_text(
        policy(
            "p",
            body='  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n'
            "  issuance: {caBundleFile: huge-ca.pem}\n",
        )
    )
    sparse(hostile / "huge.yaml")
    sparse(hostile / "huge-ca.pem")

    code, output, baseline = measured_check(small)
    assert (code, output.strip()) == (0, "ok: 1 policies in 1 file(s)")
    code, output, peak = measured_check(hostile)

    assert peak - baseline < GROWTH_KIB, f"check grew by {peak - baseline} KiB"
    assert code == 1
    lines = output.splitlines()
    assert (
        f"{hostile}/huge.yaml:1: cannot read file: it is {HUGE} bytes, over the limit of "
        "1048576 bytes" in lines
    )
    assert any(
        f"spec.issuance.caBundleFile: cannot read '{hostile}/huge-ca.pem': it is {HUGE} bytes"
        in line
        for line in lines
    ), output


def test_check_does_not_hang_on_a_fifo_named_as_ca_bundle(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ca.pem")
    (tmp_path / "p.yaml").write_text(
        policy(
            "p",
            body='  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n'
            "  issuance: {caBundleFile: ca.pem}\n",
        )
    )
    done = subprocess.run(
        [str(CLI), "check", str(tmp_path / "p.yaml")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert f"cannot read '{tmp_path}/ca.pem': it is not a regular file" in done.stdout


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.mark.server
def test_reloading_server_refuses_a_huge_policy_file_without_reading_it(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(policy("p"))
    with running_server(tmp_path, policies, "--reload-interval", "0.3") as server:
        processes = [server.process.pid, *worker_pids(server)]
        before = {pid: peak_rss_kib(pid) for pid in processes}
        sparse(policies / "huge.yaml")
        wait_for(
            lambda: total(scrape(server), "csr_webhook_policy_reloads_total", result="failure") == 1
        )
        time.sleep(2.0)  # several more polls of a directory that still holds the file
        status = readyz(server)
        growth = {pid: peak_rss_kib(pid) - before[pid] for pid in processes}
    assert all(grown < GROWTH_KIB for grown in growth.values()), growth
    assert f"{policies}/huge.yaml:1: cannot read file: it is {HUGE} bytes" in (
        status["lastReloadError"] or ""
    )


def write_tie_policies(directory: Path, count: int, stars: int) -> None:
    """`count` policies whose patterns share a precedence and differ at the end, so that no
    pair ties but the last policy and policy 7. Patterns alternate between two shapes: an
    automaton search over such a pair explores a number of states polynomial of high degree
    in the number of stars (about a second each at 20 stars)."""
    directory.mkdir()
    for index in range(count):
        shape = "*ab" if index % 2 == 0 else "*ba"
        end = 7 if index == count - 1 else index
        pattern = "example.com/" + shape * stars + f"*{end:02d}"
        (directory / f"p{index:02d}.yaml").write_text(policy(f"p{index:02d}", pattern))


def test_check_decides_ties_between_sixty_policies_full_of_stars(tmp_path: Path) -> None:
    write_tie_policies(tmp_path / "policies", 60, 20)
    done = subprocess.run(
        [str(CLI), "check", str(tmp_path / "policies")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    [tie] = done.stdout.splitlines()
    assert tie.startswith(
        f"{tmp_path}/policies/p59.yaml:1: spec.signerNames: signer selection tie:"
    )
    assert "of policy 'p59' and" in tie
    assert "of policy 'p07' can match the same signer with equal precedence" in tie


def test_check_gives_up_on_too_many_ties_to_decide_and_names_the_pair(tmp_path: Path) -> None:
    stars = 4000  # 12,000-character patterns: the budget runs out within a few hundred pairs
    pairs_in_budget = MAX_TIE_WORK // (PAIR_COST + 2 * (12 + 3 * stars + 3))
    count = 4
    while count * (count - 1) // 2 <= pairs_in_budget:
        count += 1
    write_tie_policies(tmp_path / "policies", count, stars)
    done = subprocess.run(
        [str(CLI), "check", str(tmp_path / "policies")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    gave_up = [line for line in done.stdout.splitlines() if "gave up" in line]
    assert len(gave_up) == 1, done.stdout
    files = [f"{tmp_path}/policies/p{i:02d}.yaml" for i in range(count)]
    named = [file for file in files if f"({file}:" in gave_up[0]]
    assert len(named) == 2, gave_up[0]
    assert gave_up[0].startswith(named[1] + ":1: spec.signerNames: signer selection tie check ")
    assert f"gave up after {pairs_in_budget} comparisons, undecided:" in gave_up[0]
    assert len(gave_up[0]) < 800  # patterns are cut short in the message


def cpu_seconds(first: str, second: str, repeat: int = 5) -> float:
    a, b = signer_pattern(first), signer_pattern(second)
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        tie_witness(a, b)
        best = min(best, time.process_time() - started)
    return best


@pytest.mark.parametrize("tie", [True, False])
def test_tie_decision_grows_linearly_with_pattern_length(tie: bool) -> None:
    def pair(stars: int) -> tuple[str, str]:
        end = "x" if tie else "y"
        return "example.com/" + "*ab" * stars + "*x", "example.com/" + "*ba" * stars + "*" + end

    assert (tie_witness(*map(signer_pattern, pair(10))) is not None) is tie
    small = cpu_seconds(*pair(2_000))
    large = cpu_seconds(*pair(20_000))
    assert large / max(small, 1e-6) < 30, (small, large)


# --- the decision agrees with an automaton over the patterns' product -----------------


def _overlap_by_automaton(first: str, second: str) -> bool:
    """Reference: explore the product of the two patterns' automata (`*` = one or more
    characters other than `/`) over every character either names, "/" and one fresh."""

    def tokens(pattern: str) -> list[str]:
        return [t for c in pattern for t in (["ANY", "LOOP"] if c == "*" else [c])]

    def closure(toks: list[str], state: int) -> set[int]:
        states = {state}
        while state < len(toks) and toks[state] == "LOOP":
            state += 1
            states.add(state)
        return states

    def step(toks: list[str], states: frozenset[int], char: str) -> frozenset[int]:
        out: set[int] = set()
        for state in states:
            if state < len(toks):
                token = toks[state]
                if token == "LOOP" and char != "/":
                    out |= closure(toks, state)
                elif (token == "ANY" and char != "/") or token == char:
                    out |= closure(toks, state + 1)
        return frozenset(out)

    a, b = tokens(first), tokens(second)
    alphabet = {c for c in a + b if len(c) == 1} | {"\0", "/"}
    start = (frozenset(closure(a, 0)), frozenset(closure(b, 0)))
    seen, frontier = {start}, [start]
    while frontier:
        left, right = frontier.pop()
        if len(a) in left and len(b) in right:
            return True
        for char in alphabet:
            pair = (step(a, left, char), step(b, right, char))
            if pair[0] and pair[1] and pair not in seen:
                seen.add(pair)
                frontier.append(pair)
    return False


_segment = st.text(alphabet="ab*", min_size=1, max_size=5)
_signer = st.builds(lambda d, n: f"{d}/{n}", _segment, _segment)


@settings(max_examples=400, deadline=None)
@given(_signer, _signer)
def test_tie_witness_agrees_with_the_product_automaton(first: str, second: str) -> None:
    witness = tie_witness(signer_pattern(first), signer_pattern(second))
    assert (witness is not None) == _overlap_by_automaton(first, second)
    if witness is not None:
        assert signer_pattern(first).matches(witness)
        assert signer_pattern(second).matches(witness)


def test_directory_fingerprint_follows_content_not_timestamps(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(policy("p"))
    old = time.time() - 3600  # well past the window in which a timestamp is not trusted
    os.utime(tmp_path / "p.yaml", (old, old))
    look = DirectoryFingerprint(tmp_path)
    first = look()
    assert look() == first
    os.utime(tmp_path / "p.yaml", (old + 1, old + 1))  # touched, same content: no reload
    assert look() == first
    # The same size and modification time, other content: the change time gives it away.
    (tmp_path / "p.yaml").write_text(policy("q"))
    os.utime(tmp_path / "p.yaml", (old + 1, old + 1))
    assert look() != first
    assert look() == DirectoryFingerprint(tmp_path)(), "a first look sees what the last one did"
    sparse(tmp_path / "huge.yaml")  # over the limit: its metadata stands in for its content
    with_huge = look()
    assert with_huge != first
    assert look() == with_huge
