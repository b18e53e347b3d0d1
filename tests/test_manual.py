"""The repository is its own manual: docs/ against the code and a running server.

Links: no committed file refers to a document outside the repository, and every relative
Markdown link resolves to a file (and heading) in it. Tables marked in the docs are compared
with what they describe: `<!-- serve-flags -->` (docs/server.md) with the `serve` parser,
`<!-- metrics -->` (docs/server.md) with a running server's exposition,
`<!-- policytest-fields -->` (docs/policy-tests.md) with the PolicyTest shape, and
`<!-- webhook-requirements -->` (docs/deploy.md) with manifests/base/webhooks.yaml. The first
suite of docs/policy-tests.md runs with the output the page shows.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.fake_apiserver import CSRS, NODES, Collection, serving, write_kubeconfig
from tests.reviews import create_review
from tests.server import review_over, running_server
from tests.test_operations import wait_for
from webhook.authoring import suite_schema
from webhook.authoring.policytest import run_tests
from webhook.cli import build_parser
from webhook.policy import schema

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Spelled in pieces so that this file does not match itself.
OUTSIDE = ("../" + "shared", "SPEC" + ".md", "/work/" + "shared")
USER_DOCS = [*sorted(DOCS.glob("*.md")), ROOT / "README.md", ROOT / "manifests" / "README.md"]


def committed_files() -> list[Path]:
    """Files git tracks (and new ones it would add); every file but build output without git."""
    git = shutil.which("git")
    if git is not None and (ROOT / ".git").exists():
        listed = subprocess.run(
            [git, "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]
    skipped = {".git", ".venv", "build", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
    return [
        p for p in ROOT.rglob("*") if p.is_file() and not skipped & set(p.relative_to(ROOT).parts)
    ]


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def test_no_committed_file_refers_to_a_document_outside_the_repository() -> None:
    found = []
    for path in committed_files():
        text = _text(path)
        if text is None:
            continue
        found += [f"{path.relative_to(ROOT)}: {o}" for o in OUTSIDE if o in text]
    assert found == []


def test_user_docs_cite_no_specification_the_repository_lacks() -> None:
    """`SPEC §6` in a page a user reads points at nothing a clone has; say it here instead."""
    cited = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in USER_DOCS
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bSPEC\b", line)
    ]
    assert cited == []


# ---- Markdown links -----------------------------------------------------------------------

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as `-`, `-1`, `-2`
    for repeated headings."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", markdown), flags=re.MULTILINE):
        base = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, count = base, 0
        while anchor in anchors:
            count += 1
            anchor = f"{base}-{count}"
        anchors.add(anchor)
    return anchors


def _anchors_of(path: Path) -> set[str]:
    return _anchors(path.read_text(encoding="utf-8")) if path.suffix == ".md" else set()


def markdown_links() -> Iterator[tuple[Path, str]]:
    for path in committed_files():
        if path.suffix == ".md":
            for target in _LINK.findall(_prose(path.read_text(encoding="utf-8"))):
                yield path, target


def test_docs_have_relative_links_to_check() -> None:
    linked = {path for path, _ in markdown_links()}
    assert {ROOT / "README.md", DOCS / "policy-reference.md", DOCS / "server.md"} <= linked


def test_every_relative_markdown_link_resolves_inside_the_repository() -> None:
    broken = []
    for path, target in markdown_links():
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}: ({target})"
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{where} leaves the repository")
        elif not resolved.exists():
            broken.append(f"{where} does not exist")
        elif fragment and fragment not in _anchors_of(resolved):
            broken.append(f"{where} has no heading #{fragment}")
    assert broken == []


# ---- marked tables ------------------------------------------------------------------------


def table(path: Path, marker: str) -> list[list[str]]:
    """The rows (cells stripped) of the table between `<!-- marker -->` and its closing mark."""
    text = path.read_text(encoding="utf-8")
    start = text.index(f"<!-- {marker} -->")
    body = text[start : text.index(f"<!-- /{marker} -->", start)]
    lines = [line for line in body.splitlines() if line.startswith("|")]
    assert len(lines) > 2, f"no table under {marker}"
    # `\|` inside a cell is an escaped bar, not a column separator
    rows = [re.split(r"(?<!\\)\|", line)[1:-1] for line in lines[2:]]
    return [[cell.strip().replace("\\|", "|") for cell in row] for row in rows]


def code(cell: str) -> str:
    found = re.match(r"`([^`]*)`", cell)
    assert found, f"expected a `code` cell, got {cell!r}"
    return found.group(1)


def test_serve_flag_table_is_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("CSR_WEBHOOK_")]:
        monkeypatch.delenv(name)
    parser = build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    serve = subparsers.choices["serve"]
    flags = {
        action.option_strings[0]: action.default
        for action in serve._actions
        if action.option_strings and action.option_strings[0] != "-h"
    }
    documented = {}
    for flag, default, meaning in table(DOCS / "server.md", "serve-flags"):
        assert meaning
        name = code(flag).split()[0]
        documented[name] = None if default == "none" else code(default)
    assert documented == flags


def _object_of(shape: schema.Schema) -> schema.Schema:
    """An `either` of a word and an object (`patch`, `cluster`): its object, whose fields are
    fields of the document too."""
    objects = [a for a in shape.get("oneOf", []) if a.get("type") == "object"]
    return objects[0] if len(objects) == 1 else shape


def _walk(shape: schema.Schema, path: str) -> Iterator[str]:
    shape = _object_of(shape)
    if shape.get("type") == "object":
        for key, child in shape["properties"].items():
            inner = f"{path}.{key}" if path else key
            yield inner
            yield from _walk(child, inner)
    elif shape.get("type") == "array":
        yield from _walk(shape["items"], f"{path}[]")


def test_policytest_field_table_lists_every_field_of_the_shape() -> None:
    rows = table(DOCS / "policy-tests.md", "policytest-fields")
    documented = [code(row[0]) for row in rows]
    assert len(documented) == len(set(documented)), "a field is listed twice"
    assert documented == list(_walk(suite_schema.POLICY_TEST, ""))
    for field_name, _type, default, _meaning in rows:
        required = default == "*required*"
        parent, _, key = field_name.strip("`").rpartition(".")
        shape = _shape_at(parent)
        assert (key in shape.get("required", ())) is required, f"{field_name}: required or not?"


def _shape_at(path: str) -> schema.Schema:
    shape = suite_schema.POLICY_TEST
    for part in path.split(".") if path else []:
        shape = _object_of(shape["properties"][part.removesuffix("[]")])
        if part.endswith("[]"):
            shape = _object_of(shape["items"])
    return shape


def test_webhook_requirement_table_is_the_shipped_configuration() -> None:
    documents = list(yaml.safe_load_all((ROOT / "manifests/base/webhooks.yaml").read_text()))
    hooks = {d["kind"]: d["webhooks"] for d in documents}
    assert [len(h) for h in hooks.values()] == [1, 1]
    validating = hooks["ValidatingWebhookConfiguration"][0]
    mutating = hooks["MutatingWebhookConfiguration"][0]
    rows = table(DOCS / "deploy.md", "webhook-requirements")
    assert len(rows) >= 10
    for field_cell, validating_cell, mutating_cell, why in rows:
        assert why
        path = code(field_cell)
        for hook, cell in ((validating, validating_cell), (mutating, mutating_cell)):
            expected = None if cell == "—" else yaml.safe_load(code(cell))
            assert _lookup(hook, path) == expected, f"{path}: {cell}"


def _lookup(value: Any, path: str) -> Any:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            value = value[int(part[1:-1])]
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def _scrape(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    return text


@pytest.mark.server
def test_metrics_table_is_what_a_running_server_exports(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    allowed = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    denied = create_review(b"garbage", signer_name="example.com/signer")
    # With a cluster connection (tests/fake_apiserver.py), so the cache metrics are exported.
    with serving({NODES: Collection(), CSRS: Collection()}) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        with running_server(tmp_path, policies, "--kubeconfig", str(kubeconfig)) as server:
            for review in (allowed, denied):
                connection = server.connection()
                assert int(review_over(connection, review)["status"]) == 200
                connection.close()
            wait_for(lambda: "csr_webhook_cluster_cache_age" in _scrape(server.metrics_port))
            exposition = _scrape(server.metrics_port)
    exported = {}
    for family in text_string_to_metric_families(exposition):
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for sample in family.samples for k in sample.labels} - {"le"}
        exported[name] = (family.type, labels)
    documented = {}
    for metric, kind, label_cell, meaning in table(DOCS / "server.md", "metrics"):
        assert meaning
        documented[code(metric)] = (kind, set(re.findall(r"`([^`]+)`", label_cell)))
    assert documented == exported


# ---- the first suite of docs/policy-tests.md ----------------------------------------------


def _blocks(text: str, language: str) -> list[str]:
    """Fenced blocks in order (each fence pair once), those of one info string."""
    fenced = re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    return [body for info, body in fenced if info == language]


def test_the_first_suite_of_the_policytest_page_passes_with_the_output_shown(
    tmp_path: Path,
) -> None:
    page = (DOCS / "policy-tests.md").read_text(encoding="utf-8")
    suite = _blocks(page, "yaml")[0]
    output = _blocks(page, "")[0]
    directory = tmp_path / "policies"
    directory.mkdir()
    shutil.copy(ROOT / "policies" / "kubelet-serving.yaml", directory)
    (directory / "kubelet-serving.test.yaml").write_text(suite, encoding="utf-8")
    command, *expected = output.splitlines()
    assert command == "$ csr-webhook test policies/kubelet-serving.test.yaml"
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        code_ = run_tests(["policies/kubelet-serving.test.yaml"], lines.append)
    assert (code_, lines) == (0, expected)


# ---- the approval controller (docs/approver.md, docs/deploy.md) ---------------------------


def test_approve_flag_table_is_the_parser() -> None:
    parser = build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    approve = subparsers.choices["approve"]
    flags = {
        action.option_strings[0]: action.default
        for action in approve._actions
        if action.option_strings and action.option_strings[0] != "-h"
    }
    documented = {}
    for flag, default, meaning in table(DOCS / "approver.md", "approve-flags"):
        assert meaning
        documented[code(flag).split()[0]] = None if default == "none" else code(default)
    assert documented == flags


def test_approver_metrics_table_is_what_the_controller_exports(tmp_path: Path) -> None:
    from prometheus_client import generate_latest  # noqa: PLC0415 - only here

    from tests.approver_setting import approver_setting, auto_policy  # noqa: PLC0415

    with approver_setting(tmp_path, auto_policy()) as setting:
        setting.add("good", "client-a")
        assert setting.controller.process("good") == "approved"
        exposition = generate_latest(setting.metrics.registry).decode()
    exported = {}
    for family in text_string_to_metric_families(exposition):
        if family.name.endswith("_created"):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for sample in family.samples for k in sample.labels}
        exported[name] = (family.type, labels)
    documented = {}
    for metric, kind, label_cell, meaning in table(DOCS / "approver.md", "approver-metrics"):
        assert meaning
        documented[code(metric)] = (kind, set(re.findall(r"`([^`]+)`", label_cell)))
    assert documented == exported


def test_approver_rbac_table_is_the_shipped_rbac() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "manifests" / "base")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    roles = {
        doc["kind"]: doc
        for doc in yaml.safe_load_all(rendered)
        if doc and doc["kind"] in ("ClusterRole", "Role") and "approver" in doc["metadata"]["name"]
    }
    shipped = []
    for kind, role in sorted(roles.items()):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    shipped.append(
                        (
                            kind,
                            f"{group}/{resource}" if group else resource,
                            tuple(rule.get("resourceNames", ())),
                            tuple(rule["verbs"]),
                        )
                    )
    documented = [
        (
            kind,
            code(resource),
            tuple(re.findall(r"`([^`]+)`", names)),
            tuple(re.findall(r"`([^`]+)`", verbs)),
        )
        for kind, resource, names, verbs in table(DOCS / "deploy.md", "approver-rbac")
    ]
    assert sorted(documented) == sorted(shipped)
