"""The ``hf`` backend: a local Hugging Face causal LM, micro-batched KV-cached generation.

The policy of the gym, critic and RL stages is the trained model itself, and the agent of an
evaluation is too, so one backend serves our small trained model and a real checkpoint with the
same code: ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained(folder)``, the folder's
own chat template, its own end-of-turn tokens.

- **Prompt**: ``request.messages`` + ``request.tools`` rendered with the tokenizer's chat
  template and the generation prompt. Assistant tool-call arguments that are JSON text are
  passed as objects (as SFT examples hold them), so the model reads what it was trained on.
- **Micro-batching** (``acomplete``): episodes run concurrently under asyncio, so requests
  arrive together. They are queued per event loop; a drainer task takes up to
  ``max_batch_size`` of them with the same sampling mode (waiting at most ``batch_wait_ms`` for
  the batch to fill) and decodes them as one batch (``run_batch``) in a worker thread, so the
  loop keeps serving episodes meanwhile. One batch runs at a time (a lock); requests arriving
  during it form the next batch.
- **Sampler** (``sampler``): 'kimi' (default) is ``llm.decode.Sampler``: each distinct prompt
  prefilled once, its KV cache shared by its k rows, a hand-written Llama-family decode step
  (other architectures: the model's own forward), finished rows dropped from the batch; it
  also returns each token's log-probability; with ``cpu_processes`` > 1 on a CPU a batch's
  prompts are split over that many processes forked for the call (``llm.forked``: every core
  busy without the collapse of a second torch thread on a shared machine). 'hf_generate' is
  transformers' ``model.generate`` on the left-padded batch (``kv_cache`` static or dynamic),
  no log-probs.
- **Stopping**: at the first end-of-turn token: the tokenizer's eos, the model's
  ``generation_config.eos_token_id`` (a real checkpoint's list, e.g. ``<|im_end|>``,
  ``<|eot_id|>``) and any of ``END_OF_TURN`` that is one token of the vocabulary (ours:
  ``<|end|>``); or at the request's token budget. Only new tokens are decoded (special tokens
  kept, since tool-call markers are special tokens), cut before the stop token.
- **Sampling**: greedy when the temperature is 0, else pure temperature sampling (no top-k or
  top-p). Seed rule: a batch is sorted by (request seed, prompt) and its sampling seed is a hash
  of that sorted list; 'kimi' draws from a ``torch.Generator`` seeded with it, 'hf_generate'
  seeds torch inside ``torch.random.fork_rng`` (either way the caller's RNG stream is left
  untouched). So the same requests arriving together give the same outputs whatever their
  arrival order (on the same number of CPU threads and processes); the same request in a
  different batch may sample differently. Greedy outputs do not depend on the batch (up to
  floating-point ties; left padding is masked).
- **Context**: a prompt that does not leave room for one new token within ``context_length``
  (default: the model's ``max_position_embeddings``) is answered with ``ChatResponse.error``,
  never truncated: cutting an agent prompt from the left drops its system prompt and tools,
  and a model answering a prompt it cannot see is a silent wrong answer. Otherwise the token
  budget is clamped to the room left (per row: 'kimi' decodes each row to its own budget;
  'hf_generate' decodes the batch for its longest budget within the longest prompt's room and
  cuts each row to its own). The gym's ``generate`` answers such a prompt with empty texts
  (counted in ``stats.context_overflows``).
- **Tool-call enforcer** (``tool_call_enforcer``, 'kimi' sampler): a request's tools become a
  grammar (``llm.enforcer``); once a reply opens a tool call it can only name an offered tool
  and write arguments valid for its schema (K2 serves its model the same way). Free text, and
  whether to call at all, stay the model's.
- **Replies**: tool calls parsed by ``llm.tool_parsing`` (format from ``tool_format``, 'auto'
  = detected from the chat template); ``meta`` holds the raw text, parse errors, finish reason
  ('stop' / 'length'), the batch size, and the tokens: ``prompt_ids``, the sampled
  ``token_ids`` (stop token included) and their ``logprobs`` (empty for 'hf_generate'), which
  RL rollouts record (``rl.episodes``). Nothing about the model's text ever raises.

``generate`` is the synchronous batch API of the gym: k samples for each of many prompts, as
texts; ``generate_samples`` returns the same as ``Generation`` objects with their token ids and
log-probs (what RL needs).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from kimi_pipeline import precision
from kimi_pipeline.llm.base import (
    HFBackendConfig,
    ChatRequest,
    ChatResponse,
    Usage,
    register_backend,
)
from kimi_pipeline.llm.decode import Sampler
from kimi_pipeline.llm.enforcer import ToolCallEnforcer
from kimi_pipeline.llm.tool_parsing import CALL_TAGS, detect_format, extract_tool_calls

log = logging.getLogger(__name__)

END_OF_TURN = ("<|end|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>",
               "<|endoftext|>")


@dataclass
class Generation:
    """One decoded completion: its tokens (stop token included), text, and why it ended."""

    tokens: int
    text: str
    stopped: bool  # True: an end-of-turn token; False: the token budget ran out
    token_ids: list[int] = field(default_factory=list)  # the ``tokens`` ids, stop included
    # log p(token) under the model's temperature-1 distribution ('kimi' sampler; empty for
    # 'hf_generate')
    logprobs: list[float] = field(default_factory=list)


@dataclass
class HFStats:
    """Running totals over the backend's life."""

    requests: int = 0
    generate_calls: int = 0
    rows_generated: int = 0  # sequences decoded (batch rows, k samples each)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    context_overflows: int = 0
    failures: int = 0
    generate_s: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Job:
    prompt: list[int]
    max_new: int
    temperature: float
    seed: int
    future: asyncio.Future
    batch_size: int = 0
    grammar: Any = None  # the enforcer's grammar for the request's tools


def _seed_of(items: list[tuple[int, list[int]]]) -> int:
    """A 63-bit seed from (seed, prompt) pairs in order."""
    h = hashlib.blake2b(digest_size=8)
    for seed, prompt in items:
        h.update(f"{seed}:{len(prompt)}:".encode())
        h.update(hashlib.blake2b(str(prompt).encode(), digest_size=8).digest())
    return int.from_bytes(h.digest(), "big") >> 1


def prepare_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages as templates want them: no None values, content a string, tool-call
    arguments as objects when they are a JSON object (kept as text otherwise)."""
    out = []
    for message in messages:
        m = {k: v for k, v in message.items() if v is not None}
        m["content"] = m.get("content") or ""
        if m.get("tool_calls"):
            m["tool_calls"] = [_call_with_object_arguments(c) for c in m["tool_calls"]]
        else:
            m.pop("tool_calls", None)
        out.append(m)
    return out


def _call_with_object_arguments(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            function["arguments"] = parsed
    return {**call, "function": function}


def _prior_calls(messages: list[dict[str, Any]]) -> int:
    return sum(len(m.get("tool_calls") or ()) for m in messages if m.get("role") == "assistant")


@contextmanager
def cpu_threads(n: int | None):
    """torch's intra-op CPU threads set to ``n`` inside the block (no-op for None)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@register_backend("hf")
class HFBackend:
    """A local causal LM behind the chat protocol (``acomplete``) and the gym's ``generate``."""

    name = "hf"

    def __init__(self, config: HFBackendConfig, model: Any = None, tokenizer: Any = None):
        """Load ``config.model_path`` (or ``config.model``); pass ``model`` / ``tokenizer`` to
        serve objects already in memory (e.g. a policy being trained)."""
        self.config = config
        path = config.model_path or config.model
        self.device = self._device(config.device)
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=self._dtype(config.dtype))
            model.to(self.device)
        self.model = model.eval()
        self.stop_ids = self._stop_ids()
        self.pad_id = self._pad_id()
        self.context_length = config.context_length or self._max_positions()
        template = self.tokenizer.chat_template
        self.tool_format = (detect_format(template) if config.tool_format == "auto"
                            else config.tool_format)
        self.enforcer = self._enforcer() if config.tool_call_enforcer else None
        self.sampler = Sampler(self.model, processes=config.cpu_processes,
                               prefix_cache_bytes=int(config.prefix_cache_mb * 2 ** 20),
                               enforcer=self.enforcer)
        self.stats = HFStats()
        self._lock = threading.Lock()  # one generate at a time, from any thread or loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Job] = []
        self._arrived: asyncio.Event | None = None
        self._drainer: asyncio.Task | None = None

    # ---------------------------------------------------------------- set-up

    @staticmethod
    def _device(choice: str) -> torch.device:
        if choice == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(choice)

    def _dtype(self, choice: str) -> torch.dtype:
        return precision.resolve(choice, self.device)

    def _stop_ids(self) -> list[int]:
        ids = [self.tokenizer.eos_token_id]
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids += eos if isinstance(eos, list) else [eos]
        vocab = self.tokenizer.get_vocab()
        ids += [vocab[t] for t in END_OF_TURN if t in vocab]
        return sorted({i for i in ids if isinstance(i, int)})

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.stop_ids[0] if self.stop_ids else 0
        return pad

    def _enforcer(self) -> ToolCallEnforcer | None:
        """The tool-call enforcer, or None (logged) where the chat format has no call tags to
        trigger on (``json``): a long run then decodes calls freely rather than stopping."""
        if self.tool_format not in CALL_TAGS:
            log.warning("tool_call_enforcer: %s writes calls in the %r format, which has no "
                        "call tags to enforce after; its calls are decoded freely",
                        self.config.model_path or self.config.model, self.tool_format)
            return None
        return ToolCallEnforcer(self.tokenizer, self._vocab_size(), self.stop_ids,
                                self.tool_format)

    def _vocab_size(self) -> int:
        """Columns of the model's logits (may exceed the tokenizer's vocabulary: padding)."""
        head = self.model.get_output_embeddings()
        return int(head.weight.shape[0]) if head is not None else len(self.tokenizer)

    def _max_positions(self) -> int:
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return min(int(self.tokenizer.model_max_length), 1 << 20)

    # ---------------------------------------------------------------- prompts

    def encode(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
               ) -> list[int]:
        """Token ids of the conversation with the generation prompt (the template adds BOS)."""
        text = self.tokenizer.apply_chat_template(
            prepare_messages(messages), tools=tools or None, add_generation_prompt=True,
            tokenize=False,
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _room(self, prompt: list[int]) -> int:
        return self.context_length - len(prompt)

    # ---------------------------------------------------------------- generation core

    def _generation_config(self, max_new: int, temperature: float, k: int) -> GenerationConfig:
        sample = temperature > 0
        return GenerationConfig(
            max_new_tokens=max_new, do_sample=sample, temperature=temperature if sample else None,
            top_k=0 if sample else None, top_p=1.0 if sample else None,
            num_return_sequences=k, eos_token_id=self.stop_ids, pad_token_id=self.pad_id,
            bos_token_id=self.tokenizer.bos_token_id, use_cache=True,
            cache_implementation=None if self.config.kv_cache == "dynamic" else "static",
        )

    def run_batch(self, prompts: list[list[int]], limits: list[int], temperature: float,
                  seed: int, k: int = 1, grammars: list[Any] | None = None) -> list[Generation]:
        """One batch over ``prompts`` (``k`` rows each, consecutive) through the configured
        sampler; every row of prompt ``i`` is cut at its budget ``limits[i]`` and, with the
        enforcer, follows ``grammars[i]`` (None: free)."""
        start = time.perf_counter()
        with self._lock, cpu_threads(self.config.cpu_threads), torch.inference_mode():
            if self.config.sampler == "kimi":
                out = self._sample(prompts, limits, temperature, seed, k, grammars)
            else:
                out = self._generate(prompts, limits, temperature, seed, k)
            self.stats.generate_calls += 1
            self.stats.batch_sizes.append(len(prompts))
        self.stats.generate_s += time.perf_counter() - start
        self.stats.rows_generated += len(prompts) * k
        return out

    def _sample(self, prompts: list[list[int]], limits: list[int], temperature: float,
                seed: int, k: int, grammars: list[Any] | None = None) -> list[Generation]:
        """``llm.decode``: one prefill per prompt, each row decoded to its own budget."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        rows = self.sampler.sample(prompts, limits, stop_ids=self.stop_ids,
                                   temperature=temperature, k=k, generator=generator,
                                   grammars=grammars)
        return [self._generation(r.token_ids, r.stopped, r.logprobs) for r in rows]

    def _generate(self, prompts: list[list[int]], limits: list[int], temperature: float,
                  seed: int, k: int) -> list[Generation]:
        """``model.generate`` on the left-padded batch; it never decodes past the context of
        its longest prompt."""
        width = max(len(p) for p in prompts)
        steps = max(1, min(max(limits), self.context_length - width))
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt):] = 1
        config = self._generation_config(steps, temperature, k)
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(seed)
            out = self.model.generate(input_ids=ids.to(self.device),
                                      attention_mask=mask.to(self.device), generation_config=config)
        new = out[:, width:].tolist()
        return [self._finish(tokens, limits[row // k]) for row, tokens in enumerate(new)]

    def _rng_devices(self) -> list[int]:
        return [self.device.index or 0] if self.device.type == "cuda" else []

    def _finish(self, tokens: list[int], limit: int) -> Generation:
        stops = set(self.stop_ids)
        tokens = tokens[:limit]
        cut = next((i for i, t in enumerate(tokens) if t in stops), None)
        return self._generation(tokens if cut is None else tokens[:cut + 1], cut is not None)

    def _generation(self, token_ids: list[int], stopped: bool,
                    logprobs: list[float] | None = None) -> Generation:
        """Text of the tokens before the stop token (special tokens kept)."""
        body = token_ids[:-1] if stopped else token_ids
        text = self.tokenizer.decode(body, skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)
        return Generation(len(token_ids), text, stopped, list(token_ids), list(logprobs or []))

    # ---------------------------------------------------------------- the chat protocol

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        start = time.perf_counter()
        self.stats.requests += 1
        try:
            prompt = self.encode(request.messages, request.tools)
        except Exception as exc:  # noqa: BLE001 — a template that refuses the dialogue
            return self._failure(f"chat template failed: {type(exc).__name__}: {exc}", start)
        if self._room(prompt) < 1:
            self.stats.context_overflows += 1
            return self._failure(f"context overflow: prompt has {len(prompt)} tokens, the model "
                                 f"holds {self.context_length}", start, prompt_tokens=len(prompt))
        budget = min(request.max_tokens or self.config.max_tokens, self._room(prompt))
        temperature = (self.config.temperature if request.temperature is None
                       else request.temperature)
        seed = self.config.seed if request.seed is None else request.seed
        job = _Job(prompt, budget, float(temperature), int(seed),
                   asyncio.get_running_loop().create_future(), grammar=self._grammar(request.tools))
        self._submit(job)
        try:
            generation = await job.future
        except Exception as exc:  # noqa: BLE001 — e.g. out of memory: this request fails alone
            return self._failure(f"generate failed: {type(exc).__name__}: {exc}", start)
        return self._reply(request, prompt, generation, job, start)

    def _grammar(self, tools: list[dict[str, Any]] | None) -> Any:
        """The enforcer's grammar for ``tools`` (None without an enforcer or tools)."""
        return self.enforcer.grammar(tools) if self.enforcer is not None else None

    def complete(self, request: ChatRequest) -> ChatResponse:
        return asyncio.run(self.acomplete(request))

    def _submit(self, job: _Job) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (each asyncio.run): fresh queue
            self._loop, self._pending, self._drainer = loop, [], None
            self._arrived = asyncio.Event()
        self._pending.append(job)
        self._arrived.set()
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            await self._fill()
            batch = self._take()
            seed = _seed_of([(j.seed, j.prompt) for j in batch])
            try:
                generations = await asyncio.to_thread(
                    self.run_batch, [j.prompt for j in batch], [j.max_new for j in batch],
                    batch[0].temperature, seed, 1, [j.grammar for j in batch])
            except Exception as exc:  # noqa: BLE001 — handed to each waiting request
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, generation in zip(batch, generations, strict=True):
                job.batch_size = len(batch)
                if not job.future.done():  # its episode may have been cancelled
                    job.future.set_result(generation)

    async def _fill(self) -> None:
        """Wait up to ``batch_wait_ms`` for the batch of the oldest request to fill."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.batch_wait_ms / 1000
        while len(self._pending) < self.config.max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[_Job]:
        """Up to ``max_batch_size`` queued jobs sampled like the oldest one, sorted by
        (seed, prompt) so that the batch does not depend on arrival order."""
        mode = self._pending[0].temperature
        batch = [j for j in self._pending if j.temperature == mode][: self.config.max_batch_size]
        taken = {id(j) for j in batch}
        self._pending = [j for j in self._pending if id(j) not in taken]
        return sorted(batch, key=lambda j: (j.seed, j.prompt))

    def _reply(self, request: ChatRequest, prompt: list[int], generation: Generation,
               job: _Job, start: float) -> ChatResponse:
        parsed = extract_tool_calls(generation.text, self.tool_format,
                                    first_index=_prior_calls(request.messages))
        self.stats.prompt_tokens += len(prompt)
        self.stats.completion_tokens += generation.tokens
        return ChatResponse(
            content=parsed.content,
            tool_calls=parsed.calls,
            usage=Usage(len(prompt), generation.tokens),
            latency_s=time.perf_counter() - start,
            backend=self.name,
            meta={"raw_text": generation.text, "parse_errors": parsed.errors,
                  "finish_reason": "stop" if generation.stopped else "length",
                  "batch_size": job.batch_size, "tool_format": self.tool_format,
                  "enforced": job.grammar is not None,
                  "prompt_ids": list(prompt), "token_ids": list(generation.token_ids),
                  "logprobs": list(generation.logprobs)},
        )

    def _failure(self, message: str, start: float, prompt_tokens: int = 0) -> ChatResponse:
        self.stats.failures += 1
        return ChatResponse(content=None, usage=Usage(prompt_tokens, 0), backend=self.name,
                            latency_s=time.perf_counter() - start, error=message)

    # ---------------------------------------------------------------- the gym's batch API

    def generate(
        self,
        prompts: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None = None,
        num_samples: int = 1,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[list[str]]:
        """``num_samples`` completions (text before the end-of-turn token) of each prompt
        (``generate_samples``, texts only)."""
        samples = self.generate_samples(prompts, tools, num_samples, temperature,
                                        max_new_tokens, seed)
        return [[g.text for g in row] for row in samples]

    def generate_samples(
        self,
        prompts: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None = None,
        num_samples: int = 1,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[list[Generation]]:
        """``num_samples`` ``Generation`` objects (text, token ids, log-probs) of each prompt.

        Prompts are decoded longest first in chunks of ``max_batch_size`` rows (a prompt's k
        samples are k rows); greedy decoding (temperature 0) decodes once and repeats the result
        k times. Chunk ``c`` samples with seed ``hash(seed, c)``, so a call is reproducible. A
        prompt that does not fit the context gets k empty generations."""
        temperature = self.config.temperature if temperature is None else temperature
        budget = max_new_tokens or self.config.max_tokens
        seed = self.config.seed if seed is None else seed
        k = num_samples if temperature > 0 else 1
        encoded = [self.encode(p, tools) for p in prompts]
        out = [[Generation(0, "", False) for _ in range(num_samples)] for _ in prompts]
        fits = [i for i, p in enumerate(encoded) if self._room(p) >= 1]
        self.stats.context_overflows += len(prompts) - len(fits)
        order = sorted(fits, key=lambda i: -len(encoded[i]))
        per_chunk = max(1, self.config.max_batch_size // k)
        grammar = self._grammar(tools)
        for c, at in enumerate(range(0, len(order), per_chunk)):
            chunk = order[at:at + per_chunk]
            limits = [min(budget, self._room(encoded[i])) for i in chunk]
            rows = self.run_batch([encoded[i] for i in chunk], limits, temperature,
                                  _seed_of([(seed, [c])]), k,
                                  None if grammar is None else [grammar] * len(chunk))
            for j, i in enumerate(chunk):
                samples = rows[j * k:(j + 1) * k]
                out[i] = samples if k == num_samples else samples * num_samples
                self.stats.prompt_tokens += len(encoded[i])
                self.stats.completion_tokens += sum(g.tokens for g in samples)
        if len(fits) < len(prompts):
            log.warning("hf generate: %d prompt(s) longer than the context (%d tokens) got "
                        "empty completions", len(prompts) - len(fits), self.context_length)
        return out
