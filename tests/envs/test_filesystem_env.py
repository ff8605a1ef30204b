"""The file-system environment: sandboxed paths, real file operations, cleanup, tasks."""

from __future__ import annotations

import gc
import json
import os

import pytest

from kimi_pipeline.envs.state import resolve_arguments
from kimi_pipeline.envs.base import FaultConfig, make_environment
from kimi_pipeline.envs.filesystem_env import TOOLS, WRITE_CAP, FilesystemEnvironment, write_tasks
from kimi_pipeline.envs.state import check_predicate
from kimi_pipeline.records import ToolCall

NO_FAULTS = FaultConfig(
    transient_error_rate=0, partial_result_rate=0, empty_result_rate=0, edge_case_rate=0
)
STATE = {
    "files": {"notes/a.md": {"content": "hello TICKET-7\n"}, "todo.txt": {"content": "buy milk\n"}}
}


def call(env, name: str, **arguments):
    result = env.step(ToolCall(id="c", name=name, arguments=arguments))
    return result, json.loads(result.content)


@pytest.fixture
def env():
    fs = make_environment("filesystem", NO_FAULTS)
    fs.reset([], STATE, seed=0)
    yield fs
    fs.close()


def test_tools_and_snapshot_round_trip(env):
    assert all(t.tool_id.startswith("env:filesystem/") and t.source == "environment" for t in TOOLS)
    assert env.snapshot() == STATE


def test_write_read_append_move_delete(env):
    assert call(env, "write_file", path="out/report.txt", content="v1")[1]["created"] is True
    assert call(env, "read_file", path="out/report.txt")[1]["content"] == "v1"
    call(env, "append_file", path="out/report.txt", content="+v2")
    result, moved = call(env, "move_file", src="out/report.txt", dst="archive/report.txt")
    assert result.ok and moved["dst"] == "archive/report.txt"
    assert call(env, "delete_file", path="todo.txt")[0].ok
    files = env.snapshot()["files"]
    assert files == {
        "archive/report.txt": {"content": "v1+v2"},
        "notes/a.md": STATE["files"]["notes/a.md"],
    }
    entries = call(env, "list_directory", path=".")[1]["entries"]
    assert [(e["name"], e["type"]) for e in entries] == [
        ("archive", "directory"),
        ("notes", "directory"),
        ("out", "directory"),
    ]


def test_search_and_errors(env):
    _, found = call(env, "search_files", pattern="*.md", query="TICKET-7")
    assert found["matches"] == [{"path": "notes/a.md", "line_number": 1, "line": "hello TICKET-7"}]
    assert call(env, "search_files", pattern="**/*.txt")[1]["files"] == ["todo.txt"]
    result, body = call(env, "read_file", path="missing.txt")
    assert (
        result.error == "not_found"
        and body["error"]["message"] == "No such file or directory: missing.txt"
    )
    assert call(env, "move_file", src="todo.txt", dst="notes/a.md")[0].error == "already_exists"
    assert call(env, "delete_file", path="notes")[0].error == "is_a_directory"
    assert (
        call(env, "write_file", path="big.txt", content="x" * (WRITE_CAP + 1))[0].error
        == "invalid_arguments"
    )


@pytest.mark.parametrize(
    "name, arguments",
    [
        ("read_file", {"path": "../outside.txt"}),
        ("read_file", {"path": "notes/../../outside.txt"}),
        ("read_file", {"path": "/etc/passwd"}),
        ("read_file", {"path": "~/.ssh/id_rsa"}),
        ("write_file", {"path": "../escape.txt", "content": "x"}),
        ("move_file", {"src": "todo.txt", "dst": "/tmp/stolen.txt"}),
        ("delete_file", {"path": "../../etc/hosts"}),
        ("list_directory", {"path": ".."}),
    ],
)
def test_path_escapes_are_refused(env, name, arguments):
    result, body = call(env, name, **arguments)
    assert (result.ok, result.error, body["error"]["code"]) == (False, "path_outside_sandbox", 403)
    assert env.snapshot() == STATE


def test_symlink_pointing_outside_is_refused(env, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, os.path.join(env.root, "link.txt"))
    os.symlink(tmp_path, os.path.join(env.root, "linkdir"))
    for name, arguments in [
        ("read_file", {"path": "link.txt"}),
        ("write_file", {"path": "link.txt", "content": "x"}),
        ("read_file", {"path": "linkdir/secret.txt"}),
        ("list_directory", {"path": "linkdir"}),
    ]:
        assert call(env, name, **arguments)[0].error == "path_outside_sandbox"
    assert secret.read_text() == "top secret"
    assert "top secret" not in json.dumps(env.snapshot()) + json.dumps(
        call(env, "search_files", query="top")[1]
    )


def test_temp_dir_is_removed_on_close_reset_and_gc():
    fs = FilesystemEnvironment(NO_FAULTS)
    fs.reset([], STATE, seed=0)
    first = fs.root
    fs.reset([], STATE, seed=1)
    assert not os.path.exists(first) and os.path.isdir(fs.root)
    second = fs.root
    fs.close()
    assert not os.path.exists(second)
    fs.reset([], STATE, seed=2)
    third = fs.root
    del fs
    gc.collect()
    assert not os.path.exists(third)


def test_written_tasks_replay_to_their_predicates():
    tasks = write_tasks("agent-fs", seed=9, n=24)
    assert {t.kind for t in tasks} == {"single_call", "chained", "conditional", "unsupported"}
    fs = FilesystemEnvironment(NO_FAULTS)
    for task in tasks:
        fs.reset([], task.initial_state, seed=task.seed)
        results = []
        for step in task.plan:
            result = fs.step(
                ToolCall(id="p", name=step.name, arguments=resolve_arguments(step.arguments, results))
            )
            assert result.ok, (task.request, result.content)
            results.append(json.loads(result.content))
        failed = [p for p in task.rubric.state_predicates if not check_predicate(fs.snapshot(), p)]
        assert not failed, (task.request, failed)
    fs.close()
    assert write_tasks("agent-fs", 9, 3) == write_tasks("agent-fs", 9, 3)
