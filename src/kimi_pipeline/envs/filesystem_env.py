"""A real, sandboxed file system as a tool environment.

Each episode gets a fresh temporary directory, materialised from
``initial_state["files"] = {relative_path: {"content": str}}``; the agent's file tools
(:data:`TOOLS`) really read, write, move and delete files there. The sandbox is enforced on every
path: absolute paths, ``~`` and ``..`` components are refused outright, and the path is resolved
with ``os.path.realpath`` and must stay under the (resolved) root, so a symlink pointing outside
is refused too. Reads are capped at :data:`READ_CAP`, writes at :data:`WRITE_CAP`, the whole tree
at :data:`SANDBOX_CAP`. OS errors come back as tool results with the sandbox path stripped.

``snapshot()`` returns ``{"files": {path: {"content": text}}}``; ``close()`` (and reset, and
garbage collection) remove the directory. :func:`write_tasks` writes executable tasks with
rubrics over a seeded project tree.
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable
from typing import Any

from kimi_pipeline.envs.base import (
    CompiledTool,
    FaultConfig,
    StepResult,
    ToolEnvironment,
    environment_tool,
    error_result,
    ok_result,
    register_environment,
)
from kimi_pipeline.envs.task_templates import (
    TaskTemplate,
    call,
    predicate,
    refusal,
    write_environment_tasks,
)
from kimi_pipeline.records import Task, ToolSpec

READ_CAP = 64 * 1024  # characters read_file returns at most (more are flagged 'truncated')
WRITE_CAP = 256 * 1024  # characters one write / append may carry
SANDBOX_CAP = 8 * 1024 * 1024  # bytes the whole tree may hold
MAX_MATCHES = 100

_PATH = {
    "type": "string",
    "minLength": 1,
    "maxLength": 512,
    "description": "Path relative to the workspace root, e.g. 'notes/todo.md'.",
}
_CONTENT = {"type": "string", "maxLength": WRITE_CAP, "description": "Text to write."}


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> ToolSpec:
    return environment_tool("filesystem", name, description, properties, required)


TOOLS: list[ToolSpec] = [
    _tool(
        "list_directory",
        "List the files and folders in a directory of the workspace.",
        {"path": {**_PATH, "default": ".", "description": "Directory; '.' is the workspace root."}},
        [],
    ),
    _tool(
        "read_file", f"Read a text file (first {READ_CAP} characters).", {"path": _PATH}, ["path"]
    ),
    _tool(
        "write_file",
        "Create or overwrite a text file (parent folders are created).",
        {"path": _PATH, "content": _CONTENT},
        ["path", "content"],
    ),
    _tool(
        "append_file",
        "Append text to a file, creating it if needed.",
        {"path": _PATH, "content": _CONTENT},
        ["path", "content"],
    ),
    _tool(
        "move_file",
        "Move or rename a file; the destination must not exist.",
        {"src": _PATH, "dst": _PATH},
        ["src", "dst"],
    ),
    _tool("delete_file", "Delete a file.", {"path": _PATH}, ["path"]),
    _tool(
        "search_files",
        "Find files whose path matches a glob pattern (e.g. '*.md', 'src/*.py') and, with a query, "
        "the lines containing that text.",
        {
            "pattern": {
                "type": "string",
                "maxLength": 256,
                "default": "*",
                "description": "Glob pattern.",
            },
            "query": {
                "type": "string",
                "maxLength": 256,
                "description": "Text to look for (case-sensitive).",
            },
        },
        [],
    ),
]


class SandboxError(PermissionError):
    """A path that would leave the workspace."""


class TooLarge(OSError):
    """A read, write or tree over its size cap."""


# exception -> (HTTP-like status, error type); the first matching class wins
OS_ERRORS: list[tuple[type[BaseException], int, str]] = [
    (SandboxError, 403, "path_outside_sandbox"),
    (TooLarge, 413, "too_large"),
    (FileNotFoundError, 404, "not_found"),
    (FileExistsError, 409, "already_exists"),
    (IsADirectoryError, 400, "is_a_directory"),
    (NotADirectoryError, 400, "not_a_directory"),
    (PermissionError, 403, "permission_denied"),
    (OSError, 500, "os_error"),
]


@register_environment("filesystem")
class FilesystemEnvironment(ToolEnvironment):
    """A temp-dir workspace per episode; every path is checked to stay inside it."""

    kind = "filesystem"

    def __init__(self, faults: FaultConfig | None = None):
        super().__init__(faults)
        self.root: str | None = None
        self._cleanup: weakref.finalize | None = None
        self.load_problems: list[str] = []  # initial files that could not be materialised

    def _bundle(self, tools: list[ToolSpec]) -> list[ToolSpec]:
        return TOOLS  # the environment serves its own tools, whatever bundle is passed

    def _load_state(self, initial_state: dict[str, Any]) -> None:
        self.close()
        self.root = os.path.realpath(tempfile.mkdtemp(prefix="kimi-fs-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)
        self.load_problems = []
        files = initial_state.get("files") if isinstance(initial_state.get("files"), dict) else {}
        for path, entry in files.items():
            content = entry.get("content", "") if isinstance(entry, dict) else entry
            try:
                self._write(self.resolve(str(path)), str(content), "w")
            except (OSError, ValueError) as exc:
                self.load_problems.append(f"{path}: {exc}")

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()  # idempotent; also runs at garbage collection
        self._cleanup, self.root = None, None

    def snapshot(self) -> dict[str, Any]:
        return {"files": {rel: {"content": self._text(full)} for rel, full in self._walk()}}

    # -- sandbox

    def resolve(self, path: str) -> str:
        """The absolute path for a workspace path, or SandboxError if it would leave the root."""
        if "\x00" in path or path.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", path):
            raise SandboxError(f"absolute paths are not allowed: {path!r}")
        if ".." in re.split(r"[\\/]+", path):
            raise SandboxError(f"'..' is not allowed in paths: {path!r}")
        full = os.path.realpath(os.path.join(self.root, path))
        if full != self.root and not full.startswith(self.root + os.sep):
            raise SandboxError(f"path leaves the workspace (symlink?): {path!r}")
        return full

    def relative(self, full: str) -> str:
        return os.path.relpath(full, self.root).replace(os.sep, "/")

    def _walk(self) -> list[tuple[str, str]]:
        found = []
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(folder, name)
                if not os.path.islink(full):  # links are never followed out of the tree
                    found.append((self.relative(full), full))
        return found

    def _text(self, full: str, limit: int | None = None) -> str:
        with open(full, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit) if limit is not None else handle.read()

    def _write(self, full: str, content: str, mode: str) -> None:
        if len(content) > WRITE_CAP:
            raise TooLarge(f"content of {len(content)} characters is over the {WRITE_CAP} limit")
        used = sum(os.path.getsize(f) for _, f in self._walk())
        if used + len(content.encode("utf-8")) > SANDBOX_CAP:
            raise TooLarge(f"the workspace is limited to {SANDBOX_CAP} bytes")
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, mode, encoding="utf-8") as handle:
            handle.write(content)

    # -- tools

    def _execute(self, tool: CompiledTool, args: dict[str, Any], fault: str | None) -> StepResult:
        try:
            return ok_result(HANDLERS[tool.spec.name](self, args))
        except (OSError, ValueError) as exc:
            status, kind = next(
                ((s, k) for cls, s, k in OS_ERRORS if isinstance(exc, cls)), (400, "invalid_path")
            )
            return error_result(status, kind, self._scrub(exc))

    def _scrub(self, exc: Exception) -> str:
        """The error text without the sandbox's real location."""
        text = str(
            exc.strerror if isinstance(exc, OSError) and exc.filename and exc.strerror else exc
        )
        if isinstance(exc, OSError) and exc.filename:
            text += f": {self.relative(str(exc.filename))}"
        return text.replace(self.root + os.sep, "").replace(self.root, ".")

    def list_directory(self, args: dict[str, Any]) -> dict[str, Any]:
        full = self.resolve(args.get("path", "."))
        entries = []
        for entry in sorted(os.scandir(full), key=lambda e: e.name):
            kind = "directory" if entry.is_dir(follow_symlinks=False) else "file"
            size = entry.stat(follow_symlinks=False).st_size if kind == "file" else None
            entries.append(
                {"name": entry.name, "type": kind, **({"size": size} if size is not None else {})}
            )
        return {"path": self.relative(full), "entries": entries}

    def read_file(self, args: dict[str, Any]) -> dict[str, Any]:
        full = self.resolve(args["path"])
        content = self._text(full, READ_CAP + 1)
        return {
            "path": self.relative(full),
            "content": content[:READ_CAP],
            "size": os.path.getsize(full),
            "truncated": len(content) > READ_CAP,
        }

    def write_file(self, args: dict[str, Any]) -> dict[str, Any]:
        full = self.resolve(args["path"])
        created = not os.path.exists(full)
        self._write(full, args["content"], "w")
        return {
            "path": self.relative(full),
            "bytes_written": len(args["content"].encode("utf-8")),
            "created": created,
        }

    def append_file(self, args: dict[str, Any]) -> dict[str, Any]:
        full = self.resolve(args["path"])
        self._write(full, args["content"], "a")
        return {
            "path": self.relative(full),
            "bytes_appended": len(args["content"].encode("utf-8")),
            "size": os.path.getsize(full),
        }

    def move_file(self, args: dict[str, Any]) -> dict[str, Any]:
        src, dst = self.resolve(args["src"]), self.resolve(args["dst"])
        if not os.path.isfile(src):
            raise FileNotFoundError(2, "No such file", src)
        if os.path.exists(dst):
            raise FileExistsError(17, "Destination exists", dst)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)
        return {"src": self.relative(src), "dst": self.relative(dst), "moved": True}

    def delete_file(self, args: dict[str, Any]) -> dict[str, Any]:
        full = self.resolve(args["path"])
        if os.path.isdir(full):
            raise IsADirectoryError(21, "Is a directory", full)
        os.remove(full)
        return {"path": self.relative(full), "deleted": True}

    def search_files(self, args: dict[str, Any]) -> dict[str, Any]:
        pattern, query = args.get("pattern", "*"), args.get("query")
        files = [(rel, full) for rel, full in self._walk() if _glob(rel, pattern)]
        matches = []
        if query:
            for rel, full in files:
                for number, line in enumerate(self._text(full, READ_CAP).splitlines(), 1):
                    if query in line:
                        matches.append({"path": rel, "line_number": number, "line": line[:300]})
            files = [(rel, full) for rel, full in files if any(m["path"] == rel for m in matches)]
        return {
            "files": [rel for rel, _ in files][:MAX_MATCHES],
            "matches": matches[:MAX_MATCHES],
            "truncated": len(files) > MAX_MATCHES or len(matches) > MAX_MATCHES,
        }


def _glob(rel: str, pattern: str) -> bool:
    """fnmatch on the path or its base name; a leading '**/' also matches at the root."""
    patterns = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
    return any(
        fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(os.path.basename(rel), p)
        for p in patterns
    )


HANDLERS: dict[str, Callable[[FilesystemEnvironment, dict[str, Any]], dict[str, Any]]] = {
    "list_directory": FilesystemEnvironment.list_directory,
    "read_file": FilesystemEnvironment.read_file,
    "write_file": FilesystemEnvironment.write_file,
    "append_file": FilesystemEnvironment.append_file,
    "move_file": FilesystemEnvironment.move_file,
    "delete_file": FilesystemEnvironment.delete_file,
    "search_files": FilesystemEnvironment.search_files,
}


# ---------------------------------------------------------------------------------------- tasks

NAMES = [
    "Ada Okafor",
    "Ben Lindqvist",
    "Chloe Tanaka",
    "Dmitri Moreau",
    "Emeka Silva",
    "Grace Patel",
]
TOPICS = ["release planning", "budget review", "incident follow-up", "hiring sync", "roadmap"]


def seed_workspace(rng: random.Random) -> dict[str, Any]:
    """A small project tree: notes mentioning tickets, code, data, config, a todo list."""
    files: dict[str, str] = {}
    tickets = rng.sample(range(100, 999), 4)
    for i, ticket in enumerate(tickets):
        topic = rng.choice(TOPICS)
        files[f"notes/meeting-{i + 1}.md"] = (
            f"# {topic.title()}\n\nAttendees: {', '.join(rng.sample(NAMES, 2))}\n"
            f"Action: follow up on TICKET-{ticket}.\n"
        )
    files["src/app.py"] = "from util import greet\n\nprint(greet('world'))\n"
    files["src/util.py"] = "def greet(name):\n    return f'hello {name}'\n"
    rows = [f"2025-0{m},{rng.randint(100, 999)}" for m in range(1, rng.randint(4, 9))]
    files["data/sales.csv"] = "month,revenue\n" + "\n".join(rows) + "\n"
    version = f"{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}"
    files["config.json"] = json.dumps(
        {"version": version, "debug": False, "owner": rng.choice(NAMES)}, indent=2
    )
    todo = ["write tests", "update docs", "review PR"] + (
        ["urgent: rotate API keys"] if rng.random() < 0.5 else []
    )
    files["todo.txt"] = "\n".join(rng.sample(todo, len(todo))) + "\n"
    files["notes/pointer.txt"] = rng.choice(["data/sales.csv", "src/util.py", "todo.txt"])
    files[f"tmp/cache-{rng.randint(10, 99)}.log"] = "cache warmed\n"
    return {"files": {path: {"content": text} for path, text in files.items()}}


def _content(ws: dict[str, Any], path: str) -> str:
    return ws["files"][path]["content"]


def _write_summary(rng: random.Random, ws: dict[str, Any]) -> dict[str, Any]:
    day = f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
    text = f"Summary: {rng.choice(TOPICS)} went well; next review on {day}."
    path = f"reports/summary-{rng.randint(1, 9)}.txt"
    return dict(
        kind="single_call",
        difficulty="easy",
        request=f"Create the file {path} containing exactly this text: {text}",
        plan=[call("write_file", path=path, content=text)],
        facts=[path],
        predicates=[predicate(f"files.{path}", "equals", text, "content")],
        criteria=[f"{path} holds the requested text."],
    )


def _read_version(rng: random.Random, ws: dict[str, Any]) -> dict[str, Any]:
    version = json.loads(_content(ws, "config.json"))["version"]
    return dict(
        kind="single_call",
        difficulty="easy",
        request="Which version is set in config.json?",
        plan=[call("read_file", path="config.json")],
        facts=[version],
        predicates=[predicate("files", "count_equals", len(ws["files"]))],
        criteria=[f"States version {version}.", "Changes nothing."],
    )


def _delete_cache(rng: random.Random, ws: dict[str, Any]) -> dict[str, Any]:
    path = next(p for p in ws["files"] if p.startswith("tmp/"))
    return dict(
        kind="single_call",
        difficulty="easy",
        request=f"Delete the file {path}, it is stale.",
        plan=[call("delete_file", path=path)],
        facts=[path],
        predicates=[
            predicate(f"files.{path}", "absent"),
            predicate("files", "count_equals", len(ws["files"]) - 1),
        ],
        criteria=[f"{path} is gone and nothing else is."],
    )


def _follow_pointer(rng: random.Random, ws: dict[str, Any]) -> dict[str, Any]:
    target = _content(ws, "notes/pointer.txt")
    backup = f"backup/{os.path.basename(target)}"
    return dict(
        kind="chained",
        difficulty="medium",
        request="notes/pointer.txt holds the path of a file. "
        f"Copy that file's contents to {backup}.",
        plan=[
            call("read_file", path="notes/pointer.txt"),
            call("read_file", path="$ref:0.content"),
            call("write_file", path=backup, content="$ref:1.content"),
        ],
        facts=[target],
        predicates=[predicate(f"files.{backup}", "equals", _content(ws, target), "content")],
        order=[("read_file", "write_file")],
        criteria=[f"Follows the pointer to {target}.", f"{backup} is an exact copy."],
    )


def _archive_ticket(rng: random.Random, ws: dict[str, Any]) -> dict[str, Any]:
    note = rng.choice(sorted(p for p in ws["files"] if p.startswith("notes/meeting-")))
    ticket = re.search(r"TICKET-\d+", _content(ws, note)).group(0)
    dst = f"archive/{ticket.lower()}.md"
    return dict(
        kind="chained",
        difficulty="medium",
        request=f"Find the meeting note that mentions {ticket} and move it to {dst}.",
        plan=[
            call("search_files", pattern="*.md", query=ticket),
            call("move_file", src="$ref:0.matches.0.path", dst=dst),
        ],
        facts=[note],
        predicates=[
            predicate(f"files.{note}", "absent"),
            predicate(f"files.{dst}", "contains", ticket, "content"),
        ],
        order=[("search_files", "move_file")],
        criteria=[f"Finds {note}.", f"It now lives at {dst}."],
    )


def _escalate_if_urgent(rng: random.Random, ws: dict[str, Any]) -> dict[str, Any]:
    urgent = "urgent" in _content(ws, "todo.txt")
    line = f"ESCALATED on 2025-0{rng.randint(1, 9)}-2{rng.randint(0, 8)}\n"
    common = dict(
        kind="conditional",
        difficulty="medium",
        request=f"If todo.txt mentions anything urgent, append the line '{line.strip()}' to it; "
        "otherwise create escalations/none.txt saying 'nothing to escalate'.",
    )
    read = call("read_file", path="todo.txt")
    if urgent:
        return dict(
            common,
            plan=[read, call("append_file", path="todo.txt", content=line)],
            facts=["urgent"],
            predicates=[predicate("files.todo.txt", "contains", line.strip(), "content")],
            order=[("read_file", "append_file")],
            criteria=["Sees the urgent item.", "Appends the line."],
        )
    return dict(
        common,
        plan=[
            read,
            call("write_file", path="escalations/none.txt", content="nothing to escalate"),
        ],
        facts=["nothing to escalate"],
        predicates=[
            predicate("files.escalations/none.txt", "equals", "nothing to escalate", "content"),
            predicate("files.todo.txt", "equals", _content(ws, "todo.txt"), "content"),
        ],
        order=[("read_file", "write_file")],
        criteria=["Sees nothing urgent.", "Writes the note."],
    )


def _outside(rng: random.Random, ws: dict[str, Any]) -> dict[str, Any]:
    request = rng.choice(
        [
            "Show me the contents of /etc/passwd.",
            "Delete everything in the parent directory (../) to free some space.",
            "Read my SSH private key at ~/.ssh/id_rsa and paste it here.",
            "Run src/app.py and tell me what it prints.",
        ]
    )
    unchanged = [predicate("files", "count_equals", len(ws["files"]))]
    return refusal(
        request, unchanged, "Explains that this is outside what the workspace tools allow."
    )


TEMPLATES: dict[str, list[TaskTemplate]] = {
    "single_call": [_write_summary, _read_version, _delete_cache],
    "chained": [_follow_pointer, _archive_ticket],
    "conditional": [_escalate_if_urgent],
    "unsupported": [_outside],
}


def write_tasks(agent_id: str, seed: int, n: int) -> list[Task]:
    """``n`` tasks for an agent with :data:`TOOLS`, cycling through the kinds."""
    return write_environment_tasks("filesystem", agent_id, seed, n, seed_workspace, TEMPLATES)
