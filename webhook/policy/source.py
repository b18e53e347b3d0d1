"""Read YAML policy files into plain values while remembering the line of every path.

Owns the YAML hazards: duplicate keys, alias bombs, oversized files, non-scalar keys. A file
is measured before it is read: one over the limit, or not a regular file, is never read.
Never raises for bad input: every problem becomes a `Problem` with file and line.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from webhook.errors import SourceError

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES_PER_DOCUMENT = 20_000

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy file, printed as `file:line: path: message`, or
    `file:line:column: message` when it has a column (YAML syntax errors)."""

    file: str
    line: int
    path: str
    message: str
    severity: str = "error"
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        column = "" if self.column is None else f":{self.column}"
        return f"{self.file}:{self.line}{column}: {where}{prefix}{self.message}"


@dataclass(slots=True)
class Document:
    """One YAML document: its value and the 1-based line of each path inside it."""

    file: str
    index: int
    value: object
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def warning(document: Document, path: PathKey, message: str) -> Problem:
    """A lint warning at `path` of `document`, on the line the path starts."""
    return Problem(document.file, document.line_of(path), format_path(path), message, "warning")


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of one regular file of at most `limit` bytes, measured before reading (through
    symlinks): a larger file, a FIFO or a device costs one `fstat`, never a read. Opened
    non-blocking so that a FIFO cannot hang the caller."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SourceError(exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError("it is not a regular file")
        if info.st_size > limit:
            raise SourceError(f"it is {info.st_size} bytes, over the limit of {limit} bytes")
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise SourceError(exc.strerror or str(exc)) from None
    if len(data) > limit:
        raise SourceError(f"it grew past the limit of {limit} bytes while being read")
    return data


class _BudgetExceededError(Exception):
    pass


class _Converter:
    def __init__(self, document: Document, problems: list[Problem], max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self.document = document
        self.problems = problems
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")

    def problem(self, path: PathKey, line: int, message: str) -> None:
        self.problems.append(Problem(self.document.file, line, format_path(path), message))

    def convert(self, node: yaml.Node, path: PathKey) -> object:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _BudgetExceededError
        line = node.start_mark.line + 1
        self.document.lines.setdefault(path, line)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, object] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problem(path, key_line, "mapping keys must be plain strings")
                    continue
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problem(path, key_line, "merge keys (<<) are not supported")
                    continue
                key = str(key_node.value)
                if key in result:
                    self.problem((*path, key), key_line, f"duplicate key {key!r}")
                    continue
                self.document.lines[(*path, key)] = key_line
                result[key] = self.convert(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problem(path, line, f"cannot read value {node.value!r}: {exc}")
            return None


def read_documents(path: Path, display: str | None = None) -> tuple[list[Document], list[Problem]]:
    """Parse every YAML document of one file; problems name the file and line."""
    name = display or str(path)
    try:
        data = read_bounded(path)
    except SourceError as exc:
        return [], [Problem(name, 1, "", f"cannot read file: {exc}")]
    return parse_source(data, name)


def parse_source(data: bytes, name: str) -> tuple[list[Document], list[Problem]]:
    """Every YAML document of a file's bytes, already read."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [Problem(name, 1, "", f"file is not UTF-8 text: {exc.reason}")]
    return parse_documents(text, name)


def parse_documents(
    text: str, name: str, max_nodes: int = MAX_NODES_PER_DOCUMENT
) -> tuple[list[Document], list[Problem]]:
    """Every document of a YAML text; one expanding to more than `max_nodes` nodes (an alias
    bomb, or simply too large) is refused rather than built."""
    problems: list[Problem] = []
    documents: list[Document] = []
    try:
        for index, node in enumerate(_compose_all(text)):
            if node is None:
                continue
            document = Document(name, index, None)
            converter = _Converter(document, problems, max_nodes)
            try:
                document.value = converter.convert(node, ())
            except _BudgetExceededError:
                problems.append(
                    Problem(
                        name,
                        node.start_mark.line + 1,
                        "",
                        f"document expands to more than {max_nodes} YAML nodes "
                        "(too large, or an alias bomb)",
                    )
                )
                continue
            except RecursionError:
                problems.append(Problem(name, node.start_mark.line + 1, "", "nesting too deep"))
                continue
            documents.append(document)
    except yaml.MarkedYAMLError as exc:
        problems.append(_syntax_problem(name, text, exc))
    except (yaml.YAMLError, RecursionError) as exc:
        problems.append(Problem(name, 1, "", f"YAML error: {exc}"))
    return documents, problems


# Scanner contexts whose mark is an opener that a later token must close.
_OPENERS = {
    "while scanning a quoted scalar": "the quoted scalar is not closed",
    "while scanning a double-quoted scalar": "the quoted scalar is not closed",
    "while scanning a simple key": "the key has no ':'",
}
_FLOW_START = (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken)
_FLOW_END = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken)


def _indent(text: str, line: int) -> int:
    lines = text.split("\n")
    row = lines[line] if line < len(lines) else ""
    return len(row) - len(row.lstrip(" "))


def _at(mark: yaml.Mark) -> str:
    return f"{mark.line + 1}:{mark.column + 1}"


def _open_flow(text: str, before: yaml.Mark) -> yaml.Mark | None:
    """The innermost '[' or '{' still open where the parser gave up (one linear scan)."""
    stack: list[yaml.Mark] = []
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index >= before.index:
                break
            if isinstance(token, _FLOW_START):
                stack.append(token.start_mark)
            elif isinstance(token, _FLOW_END) and stack:
                stack.pop()
    except yaml.YAMLError:
        pass  # the scanner stops where the parser did, or earlier: what it saw stands
    return stack[-1] if stack else None


def _syntax_problem(name: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    """Point at the offending token, `file:line:column`. PyYAML reports where it gave up
    (`problem_mark`), which for a quote, key or bracket left open is a token on a later line;
    there the opener is what to fix: a quoted scalar or a key that runs past its line was not
    closed, and a flow collection cannot go on at a line indented no deeper than its own."""
    context, problem = exc.context_mark, exc.problem_mark
    opener: tuple[yaml.Mark, str] | None = None
    if problem is not None and exc.context in _OPENERS and context is not None:
        if problem.line > context.line:
            opener = context, _OPENERS[exc.context]
    elif problem is not None:
        flow = _open_flow(text, problem)
        if (
            flow is not None
            and problem.line > flow.line
            and _indent(text, problem.line) <= _indent(text, flow.line)
        ):
            opener = flow, f"{text[flow.index]!r} is not closed"
    if opener is not None and problem is not None:
        mark: yaml.Mark | None = opener[0]
        message = f"{opener[1]}: {exc.problem} at {_at(problem)}"
    else:
        mark = problem or context
        message = str(exc.problem or exc.context)
        if exc.context and exc.problem and context is not None and mark is problem:
            message += f" ({exc.context} starting at {_at(context)})"
        elif exc.context and exc.problem:
            message = f"{exc.context}: {exc.problem}"
    if mark is None:
        return Problem(name, 1, "", f"YAML syntax error: {message}")
    line, column = mark.line + 1, mark.column + 1
    return Problem(name, line, "", f"YAML syntax error: {message}", column=column)


def _compose_all(text: str) -> Iterator[yaml.Node | None]:
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()
