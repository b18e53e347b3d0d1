"""Turn policy files into a PolicySet, reporting every problem in every file at once.

Finds the files, reads each once and bounded (`source`), has `build` turn each document into
a SignerPolicy, then checks what needs all of them: unique policy names and unambiguous
signer selection (`ties`). A set with any problem is rejected whole; the caller decides what
to do with the last good one. What a set was built from is kept as `Sources`: building from
them again reads nothing from the disk and yields the same set with the same digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from webhook.errors import SourceError
from webhook.policy.build import PolicyBuilder, parse_duration
from webhook.policy.lint import lint_policy
from webhook.policy.model import PolicySet, SignerPolicy
from webhook.policy.source import Document, Problem, parse_source, read_bounded
from webhook.policy.ties import Claim, GaveUp, find_ties
from webhook.text import show

__all__ = [
    "LoadResult",
    "Sources",
    "build_policy_set",
    "is_policy_file",
    "load_policies",
    "parse_duration",
    "policy_files",
]


@dataclass(frozen=True, slots=True)
class Sources:
    """The bytes a policy set was built from: each policy file in load order, under the name
    its problems are reported with, and each CA bundle file a policy names, by path."""

    policy_files: tuple[tuple[str, bytes], ...] = ()
    ca_files: tuple[tuple[str, bytes], ...] = ()

    def digest(self) -> str:
        """The set's content hash: policy files by base name (the same files mounted elsewhere
        hash alike) and content, then CA bundle files by path and content; every part is
        length-prefixed, so no two different inputs share a hash input."""
        digest = hashlib.sha256()
        parts = [("policy", Path(name).name, data) for name, data in self.policy_files]
        parts += [("ca", name, data) for name, data in self.ca_files]
        for kind, name, data in parts:
            encoded = name.encode(errors="surrogateescape")
            digest.update(f"{kind} {len(encoded)} {len(data)}\n".encode() + encoded + data)
        return digest.hexdigest()


@dataclass(slots=True)
class LoadResult:
    """Policies found, with every problem; `policy_set` is None when any error was found."""

    policy_set: PolicySet | None
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    sources: Sources = field(default_factory=Sources)
    # (policy name, file names) for each policy that reads files beside its own file
    needs: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def is_policy_file(path: Path) -> bool:
    name = path.name
    if name.startswith(".") or name.endswith((".test.yaml", ".test.yml")):
        return False
    return name.endswith((".yaml", ".yml"))


def policy_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """Expand directories (not recursively) into policy files, in a stable order."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if is_policy_file(p) and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), 1, "", "no such file or directory"))
    return files, problems


def load_policies(paths: Iterable[Path], *, lint: bool = False) -> LoadResult:
    """With `lint`, also report `lint` warnings; warnings never reject the set."""
    files, problems = policy_files(paths)
    read: list[tuple[str, bytes]] = []
    for path in files:
        try:
            read.append((str(path), read_bounded(path)))
        except SourceError as exc:
            problems.append(Problem(str(path), 1, "", f"cannot read file: {exc}"))
    ca_files: dict[str, bytes] = {}

    def read_ca_file(path: Path) -> bytes:
        key = str(path)
        if key not in ca_files:
            ca_files[key] = read_bounded(_inside_policy_directory(path))
        return ca_files[key]

    return _build(read, read_ca_file, ca_files, problems, [str(f) for f in files], lint=lint)


def _inside_policy_directory(path: Path) -> Path:
    """Where `path`, a file named beside a policy file, really is: in the policy file's own
    directory (through the symlinks of a ConfigMap mount), or refused. A symlink out of it
    would work on a workstation and fail in the pod, or read a file nobody reviewed."""
    try:
        directory = path.parent.resolve()
        target = path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise SourceError(f"cannot resolve it: {exc}") from None
    if not target.is_relative_to(directory):
        raise SourceError(
            f"it is a symlink to {str(target)!r}, outside the policy directory {str(directory)!r}"
        )
    return target


def build_policy_set(sources: Sources) -> LoadResult:
    """The set `sources` were read for, built again from memory alone: a CA bundle file that is
    not among them is an error, never read from the disk."""
    available = dict(sources.ca_files)
    ca_files: dict[str, bytes] = {}

    def read_ca_file(path: Path) -> bytes:
        key = str(path)
        if key not in available:
            raise SourceError("it is not among the files the policy set was built from")
        ca_files[key] = available[key]
        return ca_files[key]

    files = list(sources.policy_files)
    return _build(files, read_ca_file, ca_files, [], [name for name, _ in files], lint=False)


def _build(
    policy_files: list[tuple[str, bytes]],
    read_ca_file: Callable[[Path], bytes],
    ca_files: dict[str, bytes],
    problems: list[Problem],
    files: list[str],
    *,
    lint: bool,
) -> LoadResult:
    documents: list[Document] = []
    for name, data in policy_files:
        docs, file_problems = parse_source(data, name)
        documents.extend(docs)
        problems.extend(file_problems)
    policies = []
    needs = []
    for document in documents:
        builder = PolicyBuilder(document, problems, read_ca_file)
        policy = builder.build()
        if policy is not None:
            policies.append(policy)
            if builder.files_needed:
                needs.append((policy.name, tuple(builder.files_needed)))
            if lint:
                problems.extend(lint_policy(policy, document))
    _check_across(policies, problems)
    problems.sort(key=lambda p: (p.file, p.line))
    sources = Sources(tuple(policy_files), tuple(sorted(ca_files.items())))
    result = LoadResult(None, problems, files, sources, needs)
    if not result.errors:
        result.policy_set = PolicySet(tuple(policies), sources.digest())
    return result


def _check_across(policies: list[SignerPolicy], problems: list[Problem]) -> None:
    """Unique policy names and unambiguous signer selection across all files."""
    by_name: dict[str, SignerPolicy] = {}
    for policy in policies:
        if policy.name in by_name:
            file, line = _where(policy)
            problems.append(
                Problem(
                    file,
                    line,
                    "metadata.name",
                    f"duplicate policy name {policy.name!r} "
                    f"(also at {by_name[policy.name].source})",
                )
            )
        else:
            by_name[policy.name] = policy
    owners = [(policy, pattern) for policy in policies for pattern in policy.signer_names]
    claims = [
        Claim(index, pattern)
        for index, policy in enumerate(policies)
        for pattern in policy.signer_names
    ]
    for found in find_ties(claims):
        policy, pattern = owners[found.first]
        other, other_pattern = owners[found.second]
        file, line = _where(policy)
        # Two patterns, two files and the reason on one line: each pattern's start is enough.
        first = f"{show(pattern.text, 64)} of policy {policy.name!r}"
        second = f"{show(other_pattern.text, 64)} of policy {other.name!r}"
        if isinstance(found, GaveUp):
            message = (
                f"signer selection tie check gave up after {found.compared} comparisons, "
                f"undecided: {first} ({policy.source}) and {second} ({other.source}); too "
                f"many signerNames patterns with {pattern.literal_chars} literal characters, "
                "make them fewer or more distinct"
            )
        else:
            message = (
                f"signer selection tie: {first} and {second} can match the same signer with "
                "equal precedence"
            )
        problems.append(Problem(file, line, "spec.signerNames", message))


def _where(policy: SignerPolicy) -> tuple[str, int]:
    file, _, line = policy.source.rpartition(":")
    return file, int(line)
