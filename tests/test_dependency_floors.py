"""The declared dependency floors are the ones `make test-min` proves: constraints-min.txt pins
every direct dependency of pyproject.toml (the package's and the test extras) to exactly its
floor, and the environment running the suite satisfies them (under `make test-min`, at the
floors themselves)."""

from __future__ import annotations

import os
import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints-min.txt"
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$")


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def _release(text: str) -> tuple[int, ...]:
    """A plain release number ("44", "6.0.1"); trailing zeros do not count."""
    assert re.fullmatch(r"\d+(\.\d+)*", text), f"not a plain release number: {text!r}"
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def declared() -> dict[str, tuple[int, ...] | None]:
    """Each direct dependency (the package's and the test extras) and its floor, if any."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors: dict[str, tuple[int, ...] | None] = {}
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        match = REQUIREMENT.match(requirement)
        assert match, requirement
        name, specifiers = _name(match[1]), match[2]
        floor = re.search(r">=\s*([0-9.]+)", specifiers)
        floors[name] = _release(floor[1]) if floor else None
    return floors


def pinned() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in CONSTRAINTS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9.]+)", line)
        assert match, f"constraints-min.txt: not NAME==VERSION: {line!r}"
        pins[_name(match[1])] = match[2]
    return pins


def test_every_direct_dependency_has_a_floor() -> None:
    assert [name for name, floor in declared().items() if floor is None] == []


FLOOR_LINE = re.compile(r'^\s*"([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9.]+)')


def floor_comments() -> dict[str, tuple[str, str]]:
    """Each direct dependency's floor as pyproject.toml writes it, and the comment block right
    above its line."""
    lines = (ROOT / "pyproject.toml").read_text().splitlines()
    direct = declared()
    found: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(lines):
        match = FLOOR_LINE.match(line)
        if not match or _name(match[1]) not in direct:
            continue
        top = number
        while top > 0 and lines[top - 1].lstrip().startswith("#"):
            top -= 1
        found[_name(match[1])] = (match[2], "\n".join(lines[top:number]))
    return found


def test_every_floor_says_why_it_is_the_floor() -> None:
    """A floor is proven, not guessed: the comment above it names the floor and what it brings
    ("X.Y: <what>; <older> lacks it"), so moving it starts from the reason."""
    comments = floor_comments()
    assert sorted(comments) == sorted(declared())
    unexplained = [name for name, (floor, block) in comments.items() if f"{floor}:" not in block]
    assert unexplained == [], "a floor without a comment '<floor>: <why>' right above it"


def test_constraints_pin_every_direct_dependency_to_its_floor() -> None:
    floors, pins = declared(), pinned()
    assert sorted(pins) == sorted(floors), "constraints-min.txt must pin exactly the direct deps"
    wrong = {
        name: (pins[name], ".".join(map(str, floor)))
        for name, floor in floors.items()
        if floor is not None and _release(pins[name]) != floor
    }
    assert wrong == {}, f"pin != floor in pyproject.toml: {wrong}"


@pytest.mark.parametrize("name", sorted(pinned()))
def test_installed_version_satisfies_the_floor(name: str) -> None:
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.fail(f"{name} is a declared dependency but is not installed")
    pin = pinned()[name]
    if os.environ.get("CSR_WEBHOOK_TEST_MIN"):  # `make test-min`: the floor itself
        assert _release(installed) == _release(pin), f"{name} {installed} installed, floor {pin}"
    else:
        assert _release(installed) >= _release(pin), f"{name} {installed} is below its floor {pin}"


def test_ci_runs_the_suite_then_the_floors_then_the_go_tier() -> None:
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in script if line.startswith("make ")]
    assert commands == ["make test", "make test-min", "make e2e"]
