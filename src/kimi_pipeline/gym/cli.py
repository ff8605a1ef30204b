"""``kimi-gym``: list the gym's domains and verify a file of responses against a file of tasks.

    kimi-gym domains
    kimi-gym verify TASKS.jsonl RESPONSES.jsonl [--domain coding]

``verify`` reads tasks one JSON object a line, each in the project's ``GymTask`` form or, for
coding, the public HumanEval (task_id, prompt, test, entry_point) or MBPP (task_id, text,
test_list) form, detected per line. Responses are ``{"id", "response"}`` lines joined to the
tasks by id (several lines for one id are several samples). It prints one JSON line
``{"id", "domain", "reward", "reason"}`` per task and sample (plus ``"sample"`` when a task
has several), in task-file order; a task without a response scores 0 ("no response"), an
unreadable line becomes a 0 line carrying the parse error, and the run goes on. Each domain
verifies its tasks in one ``verify_many`` call, so coding runs in parallel in the sandbox.
``--domain`` keeps only the tasks of that domain. The exit status is 0 unless the arguments
themselves are wrong: a missing, unreadable or non-text (binary) input file ends the command
with one ``kimi-gym: …`` line naming the file, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import Any, Callable, Iterator, Mapping

from kimi_pipeline.gym.registry import DOMAIN_MODULES, Verification, error_line, get_domain
from kimi_pipeline.records import GymTask

Loader = Callable[[Mapping[str, Any]], GymTask]


def _coding(name: str) -> Loader:
    def load(record: Mapping[str, Any]) -> GymTask:
        from kimi_pipeline.gym import coding

        return getattr(coding, name)(record)

    return load


# task formats, tried in order: (name, recognises a record, loads it)
TASK_FORMATS: list[tuple[str, Callable[[Mapping[str, Any]], bool], Loader]] = [
    ("gymtask", lambda r: {"task_id", "domain", "prompt"} <= r.keys(), GymTask.model_validate),
    ("humaneval", lambda r: {"task_id", "prompt", "test", "entry_point"} <= r.keys(),
     _coding("from_humaneval")),
    ("mbpp", lambda r: {"task_id", "text", "test_list"} <= r.keys(), _coding("from_mbpp")),
]


def load_task(record: Any) -> GymTask:
    """A task line's object as a ``GymTask``, whatever its supported format."""
    if not isinstance(record, dict):
        raise ValueError(f"task line is not a JSON object but {type(record).__name__}")
    for _, recognises, load in TASK_FORMATS:
        if recognises(record):
            return load(record)
    raise ValueError("unknown task format (expected GymTask, HumanEval or MBPP keys); keys: "
                     f"{sorted(record)[:8]}")


def _lines(path: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                yield number, line


def read_tasks(path: str) -> list[GymTask | dict[str, Any]]:
    """Tasks in file order; an unreadable line becomes its ready-made 0 output line."""
    out: list[GymTask | dict[str, Any]] = []
    for number, line in _lines(path):
        try:
            out.append(load_task(json.loads(line)))
        except Exception as exc:  # any bad line is reported, never fatal
            out.append(_line(_peek_id(line), None, 0.0, f"tasks line {number}: {error_line(exc)}"))
    return out


def _peek_id(line: str) -> Any:
    try:
        record = json.loads(line)
        return record.get("task_id", record.get("id")) if isinstance(record, dict) else None
    except json.JSONDecodeError:
        return None


def read_responses(path: str) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """Responses by task id (in file order), and the 0 lines of unreadable response lines."""
    by_id: dict[str, list[Any]] = defaultdict(list)
    bad: list[dict[str, Any]] = []
    for number, line in _lines(path):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "id" not in record or "response" not in record:
                raise ValueError('a response line needs {"id", "response"}')
            by_id[str(record["id"])].append(record["response"])
        except Exception as exc:
            reason = f"responses line {number}: {error_line(exc)}"
            bad.append(_line(_peek_id(line), None, 0.0, reason))
    return by_id, bad


def _line(task_id: Any, domain: str | None, reward: float, reason: str) -> dict[str, Any]:
    return {"id": task_id, "domain": domain, "reward": reward, "reason": reason}


def _verify_domain(name: str, pairs: list[tuple[GymTask, Any]]) -> list[Verification]:
    try:
        return get_domain(name).verify_many(pairs)
    except KeyError as exc:
        return [Verification(0.0, f"unknown domain: {exc.args[0]}")] * len(pairs)
    except Exception as exc:  # a verifier bug must not end the run
        return [Verification(0.0, f"verifier error: {error_line(exc)}")] * len(pairs)


def verify_files(tasks_path: str, responses_path: str,
                 domain: str | None = None) -> list[dict[str, Any]]:
    """The output lines of ``kimi-gym verify``."""
    tasks = read_tasks(tasks_path)
    responses, bad = read_responses(responses_path)
    slots: list[dict[str, Any] | tuple[GymTask, int, int]] = []  # ready line or (task, sample, of)
    for task in tasks:
        if isinstance(task, dict):
            slots.append(task)
            continue
        if domain and task.domain != domain:
            continue
        samples = responses.get(task.task_id, [])
        if not samples:
            slots.append(_line(task.task_id, task.domain, 0.0, "no response"))
        slots.extend((task, i, len(samples)) for i in range(len(samples)))
    by_domain: dict[str, list[int]] = defaultdict(list)
    for i, slot in enumerate(slots):
        if isinstance(slot, tuple):
            by_domain[slot[0].domain].append(i)
    for name, idx in by_domain.items():
        pairs = [(slots[i][0], responses[slots[i][0].task_id][slots[i][1]]) for i in idx]
        for i, v in zip(idx, _verify_domain(name, pairs)):
            task, sample, of = slots[i]
            slots[i] = _line(task.task_id, task.domain, float(v.reward), v.reason)
            if of > 1:
                slots[i]["sample"] = sample
    return [*slots, *bad]


def _cmd_domains(_: argparse.Namespace) -> int:
    for name in sorted(DOMAIN_MODULES):
        try:
            print(f"{name}\t{get_domain(name).description}")
        except Exception as exc:  # one broken domain module must not hide the others
            print(f"kimi-gym: domain {name!r} failed to load: {error_line(exc)}", file=sys.stderr)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    for line in verify_files(args.tasks, args.responses, args.domain):
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


COMMANDS = {"domains": _cmd_domains, "verify": _cmd_verify}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kimi-gym", description="The Verifiable Rewards Gym.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("domains", help="list the registered domains")
    verify = sub.add_parser("verify", help="verify responses against tasks (JSON lines out)")
    verify.add_argument("tasks", help="tasks, JSON lines: GymTask, HumanEval or MBPP")
    verify.add_argument("responses", help='responses, JSON lines {"id", "response"}')
    verify.add_argument("--domain", help="only verify tasks of this domain")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except OSError as exc:
        print(f"kimi-gym: cannot read {exc.filename or 'input'}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"kimi-gym: {_which_file(args)} is not UTF-8 text (found byte "
              f"{exc.object[exc.start]:#04x}); expected JSON lines", file=sys.stderr)
        return 2


def _which_file(args: argparse.Namespace) -> str:
    """The input file that is not UTF-8 text (tasks are read first)."""
    for path in (args.tasks, args.responses):
        try:
            with open(path, encoding="utf-8") as f:
                while f.read(1 << 20):
                    pass
        except UnicodeDecodeError:
            return path
    return "an input file"


if __name__ == "__main__":
    sys.exit(main())
