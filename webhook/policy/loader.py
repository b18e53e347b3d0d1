"""Turn policy files into a PolicySet, reporting every problem in every file at once.

Finds the files, has `build` turn each document into a SignerPolicy, then checks what needs
all of them: unique policy names and unambiguous signer selection. A set with any problem is
rejected whole; the caller decides what to do with the last good one.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from webhook.policy.build import PolicyBuilder, parse_duration
from webhook.policy.lint import lint_policy
from webhook.policy.model import PolicySet, SignerPolicy
from webhook.policy.source import Document, Problem, read_documents
from webhook.policy.ties import patterns_overlap

__all__ = ["LoadResult", "is_policy_file", "load_policies", "parse_duration", "policy_files"]


@dataclass(slots=True)
class LoadResult:
    """Policies found, with every problem; `policy_set` is None when any error was found."""

    policy_set: PolicySet | None
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

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
    digest = hashlib.sha256()
    documents: list[Document] = []
    for path in files:
        digest.update(str(path.name).encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes()[: 1 << 21])
        docs, file_problems = read_documents(path)
        documents.extend(docs)
        problems.extend(file_problems)
    policies = []
    for document in documents:
        builder = PolicyBuilder(document, problems)
        policy = builder.build()
        if policy is not None:
            policies.append(policy)
            if lint:
                problems.extend(lint_policy(policy, document))
    _check_across(policies, documents, problems)
    problems.sort(key=lambda p: (p.file, p.line))
    result = LoadResult(None, problems, [str(f) for f in files])
    if not result.errors:
        result.policy_set = PolicySet(tuple(policies), digest.hexdigest())
    return result


def _check_across(
    policies: list[SignerPolicy], documents: list[Document], problems: list[Problem]
) -> None:
    """Unique policy names and unambiguous signer selection across all files."""
    by_name: dict[str, SignerPolicy] = {}
    for policy in policies:
        if policy.name in by_name:
            file, _, line = policy.source.rpartition(":")
            problems.append(
                Problem(
                    file,
                    int(line),
                    "metadata.name",
                    f"duplicate policy name {policy.name!r} "
                    f"(also at {by_name[policy.name].source})",
                )
            )
        else:
            by_name[policy.name] = policy
    claims = [(policy, pattern) for policy in policies for pattern in policy.signer_names]
    for index, (policy, pattern) in enumerate(claims):
        for other, other_pattern in claims[:index]:
            if other is policy or pattern.is_literal != other_pattern.is_literal:
                continue
            if pattern.literal_chars != other_pattern.literal_chars:
                continue
            if patterns_overlap(pattern.text, other_pattern.text):
                file, _, line = policy.source.rpartition(":")
                problems.append(
                    Problem(
                        file,
                        int(line),
                        "spec.signerNames",
                        f"signer selection tie: {pattern.text!r} of policy {policy.name!r} and "
                        f"{other_pattern.text!r} of policy {other.name!r} can match the same "
                        "signer with equal precedence",
                    )
                )
