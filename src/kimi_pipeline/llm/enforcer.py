"""The tool-call enforcer: once a model opens a tool call, only offered tools and valid arguments.

Kimi K2 is served with a constrained-decoding module it calls the *enforcer* (K2 technical
report, appendix on the tool-call token template): when the model emits the token that opens a
tool call, the tokens that follow must fill the call template, and the JSON arguments must
follow the tool's declared schema. Free text is never constrained, and neither is the choice to
call a tool at all. This is the same for our local backend: a request's tools become one
xgrammar *structural tag* (``triggered_tags``): the trigger is the format's open tag
(``<tool_call>``; ``llm.tool_parsing.CALL_TAGS``), and each offered tool is one tag,

    <tool_call>{"name": "<the tool>", "arguments": <JSON valid for its parameters>}</tool_call>

written as this project's chat templates render calls (``training.chat``: ``", "`` and
``": "`` separators, arguments in the order of the schema's ``properties``, which is the order
the templates write them; a checkpoint whose own template puts a newline after the open tag,
as Qwen's does, is held to this spacing). So a call names an offered tool, parses, and passes
its schema (types, enums, required keys, no undeclared keys, string formats xgrammar knows
such as ``email`` and ``date-time``), unless the token budget ends inside it.

The mask is applied to the sampling scores only: a token's recorded log-probability stays the
model's own (``llm.decode.pick``), so RL's sampler/trainer agreement is measured on the policy,
not on the masked distribution. A tool whose schema xgrammar cannot compile is enforced as any
JSON object (named in the log once). Per row and step, filling the mask costs ~2 µs outside a
call and ~25 µs inside one (SmolLM2's 49k vocabulary, measured on a Zen 4 core): noise beside a
decode step.

xgrammar is imported only when an enforcer is built (``hf`` backend with
``tool_call_enforcer: true``); ``make install`` installs it without its GPU kernels' Triton.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from kimi_pipeline.llm.tool_parsing import CALL_TAGS

log = logging.getLogger(__name__)

ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function") or tool


def call_tags(tool_format: str) -> tuple[str, str]:
    """The open and close tags of ``tool_format``'s calls; a clear error for a format without."""
    if tool_format not in CALL_TAGS:
        raise ValueError(f"tool_call_enforcer: the {tool_format!r} tool format has no call tags; "
                         f"the enforcer knows {sorted(CALL_TAGS)}")
    return CALL_TAGS[tool_format]


def call_tag(tools: list[dict[str, Any]], tool_format: str,
             schema_of: Any = None) -> dict[str, Any]:
    """The structural tag that enforces calls to ``tools`` written in ``tool_format``.
    ``schema_of(tool)`` gives the parameters' schema to enforce (default: the declared one)."""
    open_tag, close_tag = call_tags(tool_format)
    schema_of = schema_of or (lambda f: f.get("parameters") or ANY_OBJECT)
    tags = [{
        "type": "tag",
        "begin": f'{open_tag}{{"name": {json.dumps(f["name"], ensure_ascii=False)}, "arguments": ',
        "content": {"type": "json_schema", "json_schema": schema_of(f)},
        "end": "}" + close_tag,
    } for f in map(_function, tools)]
    return {"type": "structural_tag",
            "format": {"type": "triggered_tags", "triggers": [open_tag], "tags": tags}}


def _one_of_as_any_of(schema: Any, names: bool = False) -> Any:
    """``oneOf`` written as ``anyOf``: a grammar cannot say "exactly one branch", so xgrammar
    enforces ``anyOf`` anyway (and warns on every compile); the schema check after the call
    still applies ``oneOf``. ``names``: ``schema`` maps property names to schemas."""
    if isinstance(schema, dict):
        return {("anyOf" if key == "oneOf" and not names else key):
                _one_of_as_any_of(value, names=key == "properties" and not names)
                for key, value in schema.items()}
    if isinstance(schema, list):
        return [_one_of_as_any_of(item) for item in schema]
    return schema


class ToolCallEnforcer:
    """Compiles (and caches) one grammar per distinct tool list, for one tokenizer."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: list[int], tool_format: str):
        try:
            import xgrammar
        except ImportError as exc:  # pragma: no cover - a user's environment without it
            raise ImportError("tool_call_enforcer needs xgrammar: pip install xgrammar "
                              "(make install does)") from exc
        call_tags(tool_format)  # a format without call tags is refused here, by name
        self.xgrammar, self.tool_format, self.vocab_size = xgrammar, tool_format, vocab_size
        info = xgrammar.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_ids))
        # one thread: compiling happens before the decode processes fork, and xgrammar's
        # thread pool would be inherited by them in whatever state it was
        self.compiler = xgrammar.GrammarCompiler(info, max_threads=1)
        self._grammars: dict[str, Any] = {}
        self._refused: set[str] = set()

    def grammar(self, tools: list[dict[str, Any]] | None) -> Any:
        """The compiled grammar for calls to ``tools`` (None without tools)."""
        if not tools:
            return None
        key = json.dumps(tools, sort_keys=True, default=str)
        if key not in self._grammars:
            try:
                self._grammars[key] = self.compiler.compile_structural_tag(
                    call_tag(tools, self.tool_format, self._schema))
            except Exception as exc:  # noqa: BLE001 — e.g. a malformed tool: decode it freely
                log.warning("tool_call_enforcer: calls to %s are not enforced (xgrammar: %s)",
                            [_function(t).get("name") for t in tools], exc)
                self._grammars[key] = None
        return self._grammars[key]

    def _schema(self, function: dict[str, Any]) -> dict[str, Any]:
        """The tool's parameters if xgrammar compiles them, else any JSON object."""
        schema = _one_of_as_any_of(function.get("parameters") or ANY_OBJECT)
        try:
            self.compiler.compile_json_schema(schema)
        except Exception as exc:  # noqa: BLE001 — an unusual schema: enforce the shape only
            if function["name"] not in self._refused:
                self._refused.add(function["name"])
                log.warning("tool_call_enforcer: %s's schema is enforced as any JSON object "
                            "(xgrammar: %s)", function["name"], exc)
            return ANY_OBJECT
        return schema

    def row_masks(self, grammars: list[Any]) -> RowMasks:
        """Matchers for one decode batch's rows (a row whose grammar is None is free)."""
        return RowMasks(self.xgrammar, [None if g is None else self.xgrammar.GrammarMatcher(g)
                                        for g in grammars], self.vocab_size)


class RowMasks:
    """The matchers of one decode batch's rows and the token bitmask they fill each step."""

    def __init__(self, xgrammar: Any, matchers: list[Any], vocab_size: int):
        self.xgrammar, self.matchers = xgrammar, matchers
        self.bitmask = xgrammar.allocate_token_bitmask(len(matchers), vocab_size)

    def fill(self, live: list[int]) -> list[int]:
        """Fill the bitmask row of each live row (``live[i]`` at position ``i``) whose grammar
        forbids some token next; those positions (a row outside a call allows everything)."""
        return [i for i, row in enumerate(live) if self.matchers[row] is not None
                and not self.matchers[row].is_terminated()
                and self.matchers[row].fill_next_token_bitmask(self.bitmask, i)]

    def apply(self, scores: Any, positions: list[int]) -> None:
        """Set to -inf the scores (``[live rows, vocab]``) of the tokens ``fill`` forbade."""
        self.xgrammar.apply_token_bitmask_inplace(
            scores, self.bitmask[:scores.shape[0]].to(scores.device), indices=positions)

    def accept(self, row: int, token: int) -> bool:
        """Advance the row's matcher by the drawn token; False (and the row unconstrained from
        then on) if the grammar refuses it, which a masked draw never does."""
        matcher = self.matchers[row]
        if matcher is None or matcher.is_terminated() or matcher.accept_token(token):
            return True
        self.matchers[row] = None
        return False
