"""`csr-webhook eval`: the webhook's CREATE verdict for CSR and PodCertificateRequest manifests,
Lists (mixed too) or AdmissionReviews.

Input is untrusted (it may come straight from a cluster): YAML goes through the policy reader's
safe path (node budget against alias bombs), JSON through `json`, both under a size cap. Every
CSR is decided by `engine.evaluate_create`, the server's own code path; PodCertificateRequests
by `pod_eval` (their creator is the node they name unless `--as` says otherwise).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook.admission import parse_csr_object, parse_review
from webhook.authoring.eval_output import render_json, render_text
from webhook.authoring.node_facts import eval_facts, read_nodes
from webhook.authoring.pod_eval import (
    LIST_KIND as POD_LIST_KIND,
)
from webhook.authoring.pod_eval import (
    NODES_GROUP,
    PodRequest,
    decide_pod,
    is_pod_request,
    node_creator,
    read_pod_request,
    review_pod_request,
)
from webhook.decision import Decision
from webhook.engine import EngineOptions, evaluate_create
from webhook.errors import InputError, ReviewError
from webhook.facts import NO_CLUSTER, ClusterFacts
from webhook.matching.variables import Requester
from webhook.policy.loader import load_policies
from webhook.policy.model import PolicySet
from webhook.policy.source import Document, Problem, parse_documents
from webhook.resource import CSRObject

# A CSR is about 40 YAML nodes: this admits tens of thousands of CSRs in one `kubectl get csr
# -o yaml` List while still refusing an alias bomb before it is built.
MAX_INPUT_NODES = 2_000_000

MAX_INPUT_BYTES = 64 * 1024 * 1024
CSR_API_VERSION = "certificates.k8s.io/v1"
_LIST_KINDS = ("List", "CertificateSigningRequestList", POD_LIST_KIND)
_MARKER = re.compile(r"---(\s|$)")
_VERDICTS = ("allowed", "warned", "audited", "denied")


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One CSR (`obj`) or PodCertificateRequest (`pod`) of the input, with its creator."""

    name: str
    obj: CSRObject | None
    requester: Requester
    pod: PodRequest | None = None

    @property
    def signer_name(self) -> str:
        return self.pod.signer_name if self.pod is not None else _csr_of(self).signer_name


def _csr_of(item: Item) -> CSRObject:
    assert item.obj is not None
    return item.obj


def _pod_item(name: str, pod: PodRequest, requester: Requester | None = None) -> Item:
    """Named namespace/name, as PodCertificateRequests are namespaced."""
    creator = requester or node_creator(pod.node_name)
    return Item(name=f"{pod.namespace}/{name}", obj=None, requester=creator, pod=pod)


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    item: Item
    decision: Decision


def read_input(name: str) -> tuple[str, str]:
    """(display name, text) of a file or of stdin (`-`), at most MAX_INPUT_BYTES."""
    display = "<stdin>" if name == "-" else name
    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(name).open("rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{display}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"{display}: input is larger than {MAX_INPUT_BYTES} bytes")
    try:
        return display, data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{display}: not UTF-8 text: {exc.reason}") from None


def _document_number(text: str, line: int) -> int:
    """1-based YAML document holding `line`: `---` markers before it, not counting a leading one."""
    number, content = 1, False
    for raw in text.splitlines()[: line - 1]:
        if _MARKER.match(raw):
            number += 1 if content else 0
            content = True  # a marker opens a document, even an empty one
        elif raw.strip() and not raw.lstrip().startswith("#"):
            content = True
    return number


def parse_input(text: str, name: str) -> tuple[list[Document], bool]:
    """JSON (one value; True) or YAML (any number of documents); raises InputError."""
    if text.lstrip().startswith(("{", "[")):
        try:
            return [Document(name, 0, json.loads(text))], True
        except RecursionError:
            raise InputError(f"{name}: document 1: nesting too deep") from None
        except json.JSONDecodeError as exc:
            json_error = f"{name}:{exc.lineno}: document 1: not valid JSON: {exc.msg}"
        documents, problems = parse_documents(text, name, MAX_INPUT_NODES)
        if problems:
            raise InputError(json_error)
        return documents, False
    documents, problems = parse_documents(text, name, MAX_INPUT_NODES)
    if problems:
        raise InputError("\n".join(_describe(p, text) for p in problems))
    if all(document.value is None for document in documents):
        raise InputError(f"{name}: no YAML or JSON documents in the input")
    return documents, False


def _describe(problem: Problem, text: str) -> str:
    column = "" if problem.column is None else f":{problem.column}"
    number = _document_number(text, problem.line)
    where = f"{problem.file}:{problem.line}{column}: document {number}"
    path = f"{problem.path}: " if problem.path else ""
    hint = ""
    if f"more than {MAX_INPUT_NODES} YAML nodes" in problem.message:
        hint = "; for a long list use JSON (`kubectl get csr -o json`), which has no such limit"
    return f"{where}: {path}{problem.message}{hint}"


def _where(document: Document, path: tuple[str | int, ...], json_input: bool) -> str:
    line = "" if json_input else f":{document.line_of(path)}"
    return f"{document.file}{line}: document {document.index + 1}"


def _display_name(raw: dict[str, Any], fallback: str) -> str:
    metadata = raw.get("metadata")
    if isinstance(metadata, dict):
        for key in ("name", "generateName"):
            if isinstance(metadata.get(key), str) and metadata[key]:
                return str(metadata[key])
    return fallback


def _kind(raw: dict[str, Any], where: str, label: str, *, kind_optional: bool = False) -> None:
    kind, api = raw.get("kind"), raw.get("apiVersion")
    if kind != "CertificateSigningRequest" and not (kind_optional and kind is None):
        raise InputError(f"{where}: {label} is a {kind!r}, not a CertificateSigningRequest")
    if api is not None and api != CSR_API_VERSION:
        raise InputError(f"{where}: {label} has apiVersion {api!r}; only {CSR_API_VERSION}")


def _csr(raw: object, where: str, label: str, *, kind_optional: bool = False) -> CSRObject:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: {label} must be an object")
    _kind(raw, where, label, kind_optional=kind_optional)
    try:
        return parse_csr_object(raw, label)
    except ReviewError as exc:
        raise InputError(f"{where}: {exc}") from None


def _not_a_create(where: str, operation: object, resource: object, sub_resource: object) -> str:
    return (
        f"{where}: eval takes CREATE reviews of certificatesigningrequests, got "
        f"{operation or '?'} of {resource or '?'}" + (f"/{sub_resource}" if sub_resource else "")
    )


def _is_pod_review(raw: dict[str, Any]) -> bool:
    wire = raw.get("request")
    resource = wire.get("resource") if isinstance(wire, dict) else None
    return isinstance(resource, dict) and resource.get("resource") == "podcertificaterequests"


def _review(raw: dict[str, Any], where: str) -> tuple[dict[str, Any], CSRObject, Requester]:
    wire = raw.get("request")
    if isinstance(wire, dict) and wire.get("operation") not in (None, "CREATE"):
        # Refused before parse_review, which would ask an UPDATE for its oldObject first.
        resource = wire.get("resource")
        kind = resource.get("resource") if isinstance(resource, dict) else None
        raise InputError(_not_a_create(where, wire.get("operation"), kind, wire.get("subResource")))
    try:
        request = parse_review(json.dumps(raw, default=str).encode())
    except ReviewError as exc:
        raise InputError(f"{where}: not a usable AdmissionReview: {exc}") from None
    if not request.is_csr or request.operation != "CREATE" or request.object is None:
        raise InputError(
            _not_a_create(where, request.operation, request.resource, request.sub_resource)
        )
    raw_obj = raw["request"]["object"]  # parse_review has checked that it is an object
    _kind(raw_obj, where, "request.object", kind_optional=True)
    obj = request.object
    user = request.user_info
    # The authenticated caller; the validating endpoint reads the same identity from spec.
    requester = Requester(user.username, user.groups) if user.username else None
    return raw_obj, obj, requester or Requester(obj.username, obj.groups)


def collect(document: Document, json_input: bool = False) -> Iterator[Item]:
    """The requests of one document: a CSR or PodCertificateRequest, a List of them, or a
    CREATE AdmissionReview."""
    value = document.value
    where = _where(document, (), json_input)
    if value is None:  # an empty document, e.g. after a trailing `---`; kubectl skips it too
        return
    if not isinstance(value, dict):
        got = "a list" if isinstance(value, list) else f"the scalar {str(value)[:40]!r}"
        raise InputError(
            f"{where}: expected a CertificateSigningRequest, a List or an AdmissionReview, "
            f"got {got}"
        )
    kind = value.get("kind")
    fallback = f"document-{document.index + 1}"
    if kind == "CertificateSigningRequest":
        obj = _csr(value, where, "object")
        yield Item(name=_display_name(value, fallback), obj=obj, requester=_spec(obj))
    elif is_pod_request(value):
        pod = read_pod_request(value, where, "object")
        yield _pod_item(_display_name(value, fallback), pod)
    elif kind in _LIST_KINDS:
        items = value.get("items")
        if not isinstance(items, list):
            raise InputError(f"{where}: items must be a list")
        for index, raw in enumerate(items):
            label = f"items[{index}]"
            at = _where(document, ("items", index), json_input)
            pods = kind == POD_LIST_KIND or (isinstance(raw, dict) and is_pod_request(raw))
            if pods:
                yield _pod_item(_display_name(raw, label), read_pod_request(raw, at, label))
                continue
            obj = _csr(raw, at, label, kind_optional=kind != "List")
            yield Item(name=_display_name(raw, label), obj=obj, requester=_spec(obj))
    elif kind == "AdmissionReview" and _is_pod_review(value):
        pod, caller = review_pod_request(value, where)
        name = _display_name(value["request"].get("object") or {}, fallback)
        yield _pod_item(name, pod, caller)
    elif kind == "AdmissionReview":
        raw_obj, obj, requester = _review(value, where)
        yield Item(name=_display_name(raw_obj, fallback), obj=obj, requester=requester)
    else:
        raise InputError(
            f"{where}: kind {kind!r} is not a CertificateSigningRequest, List or AdmissionReview"
        )


def _spec(obj: CSRObject) -> Requester:
    return Requester(obj.username, obj.groups)


def impersonate(username: str, groups: Sequence[str]) -> Requester:
    """What the API server records for `--as/--as-group`: it adds system:authenticated
    (staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go)."""
    extra = () if username == "system:anonymous" else ("system:authenticated",)
    if any(g in ("system:authenticated", "system:unauthenticated") for g in groups):
        extra = ()
    return Requester(username, (*dict.fromkeys(groups), *extra))


def decide(
    items: Sequence[Item],
    policies: PolicySet,
    options: EngineOptions,
    facts: ClusterFacts = NO_CLUSTER,
) -> list[Result]:
    return [Result(item=item, decision=_decide(item, policies, options, facts)) for item in items]


def _decide(
    item: Item, policies: PolicySet, options: EngineOptions, facts: ClusterFacts
) -> Decision:
    if item.pod is not None:
        return decide_pod(item.pod, item.requester, policies, options)
    return evaluate_create(_csr_of(item), item.requester, policies, options, facts=facts)


def run_eval(  # noqa: PLR0917 - the flags of `csr-webhook eval`, one each
    policies: str,
    files: Sequence[str],
    as_user: str | None,
    as_groups: Sequence[str],
    output: str,
    unmatched: str,
    nodes_file: str | None = None,
    count_pending: bool = False,
) -> int:
    """0 when every CSR is allowed (warned and audited count), 1 when any is denied, 2 on
    bad input or a broken policy set. `nodes_file`: Node manifests, the Nodes that exist;
    `count_pending`: the input's pending CSRs are the cluster's (maxPending)."""
    if as_groups and as_user is None:
        print("csr-webhook: error: --as-group requires --as", file=sys.stderr)
        return 2
    loaded = load_policies([Path(policies)])
    if loaded.policy_set is None:
        for problem in loaded.errors:
            print(problem, file=sys.stderr)
        print(
            f"csr-webhook: error: {len(loaded.errors)} problem(s) in policy set {policies!r}",
            file=sys.stderr,
        )
        return 2
    items: list[Item] = []
    nodes = None
    try:
        for name in files:
            display, text = read_input(name)
            documents, json_input = parse_input(text, display)
            for document in documents:
                items.extend(collect(document, json_input))
        if nodes_file is not None:
            display, text = read_input(nodes_file)
            nodes = read_nodes(*parse_input(text, display))
    except InputError as exc:
        print(f"csr-webhook: error: {exc}", file=sys.stderr)
        return 2
    if as_user is not None:
        override = impersonate(as_user, as_groups)
        items = [dataclasses.replace(i, requester=override) for i in items]
    options = EngineOptions(allow_unmatched_signers=unmatched == "allow")
    csrs = [i.obj for i in items if i.obj is not None]
    facts = eval_facts(nodes, csrs if count_pending else None)
    results = decide(items, loaded.policy_set, options, facts)
    sys.stdout.write(render_json(results) if output == "json" else render_text(results))
    counts = {v: sum(r.decision.verdict.value == v for r in results) for v in _VERDICTS}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    pods = len(items) - len(csrs)
    if pods and as_user is None and any(i.pod and i.pod.review is None for i in items):
        print(
            "PodCertificateRequests are judged as created by the node in their spec.nodeName "
            f"(system:node:<nodeName>, group {NODES_GROUP}); --as judges another creator",
            file=sys.stderr,
        )
    kinds = f"{len(csrs)} CSR(s)" + (f", {pods} PodCertificateRequest(s)" if pods else "")
    print(f"{kinds}: {summary}", file=sys.stderr)
    return 1 if counts["denied"] else 0
