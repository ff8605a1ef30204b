"""Batched, KV-cached sampling from a Hugging Face causal LM, fast on a few CPU cores.

The gym, the SFT evaluation and RL sample from the policy through ``HFBackend.run_batch``.
At the gym's batch (8 prompts x k=4 samples, 160-270-token chat prompts, 128 new tokens,
temperature 1) on SmolLM2-135M in fp32, on one thread of this project's shared 2-core Xeon
(``bench/sampling_speed.py``, same run): transformers' ``model.generate`` (static cache) samples
50 tokens/s, ``Sampler.sample`` 119 (2.4x); with every row decoded to its budget, 69 against
144 (2.1x); on two idle cores 218. Decoding 32 rows streams the weights (540 MB in fp32) and
the KV cache through the core at every step, so the levers are the ones that cut work or bytes
per sampled token, in the order they paid:

- **Inverse-CDF sampling.** ``torch.multinomial`` takes ~80 ms per step for 32 x 49k logits on
  CPU (it draws an exponential per logit); one uniform per row and ``searchsorted`` on the
  cumulative sum take ~5 ms, log-probs included.
- **One prefill per distinct prompt.** Each prompt is prefilled once, unpadded (causal
  attention, ~110 GFLOP/s), and its k rows share its keys/values: 4x less prefill than
  ``generate`` with ``num_return_sequences`` (3.2 s against ~23 s at k=4, 1 thread).
- **A KV cache grouped by prompt** (``_FastEngine``): the prompt's keys are stored once and read
  once per step for its k rows, whose queries are batched together per KV head; the generated
  tokens of the k rows are interleaved after it, so a step reads a prefix of the cache. This
  cut attention from ~90 to ~25 ms per step, and dropping a finished row costs no copy.
- **A hand-written decode step for Llama-family models** (Llama, Mistral without a sliding
  window, Qwen2 with its q/k/v biases) that reads the HF module's weights
  (``llm.llama_weights``): QKV and gate/up fused into one matmul each, every weight stored
  transposed ``[in, out]`` (MKL's sgemm at 32 rows runs ~1.3x faster in that layout than
  ``F.linear``), RoPE cos/sin from the model's own rotary module (so ``rope_parameters`` /
  ``rope_theta`` and static scaling types hold), RMSNorm as the model computes it, the tied or
  untied LM head. The copies double the model's memory; they are rebuilt when its parameters
  change (RL updates the policy in place).
- **Finished rows leave the batch** at once (their share of every matmul is saved).
- **Prompts that extend a cached one** (``prefix_cache_bytes``, ``llm.prefix_cache``): an agent
  move's prompt is the last move's plus the reply, tool results and user turn; its cached
  prefix's keys/values are copied into its prompt columns and only the new tokens run,
  attending to them. On the default SFT evaluation (24 episodes, the SFT model, fp32, two
  single-thread processes on a Zen 4 EPYC) 75 % of the 92k prompt tokens were reused: prefill
  56 s against 157 s, the evaluation 156 s against 253 s, every episode the same. Forked parts
  send back only the keys/values they computed.

Rejected, measured: ``torch.compile`` of the step (the first compile had not finished after
13 minutes on the 2 shared cores); MKL's packed sgemm (``torch.ops.mkl._mkl_linear``: ~8% per
step, for 2 GB of packed weights, 3.7x the model, fast only at the packed batch size);
``scaled_dot_product_attention`` for the decode step (its CPU flash kernel is 2-3x slower than
the batched matmuls at 12 queries); chunking the LM head;
``F.linear`` on the untransposed weights. Threads: torch's default is the core count; a second
thread speeds the matmuls up on idle cores, but when another process holds a core every op
waits for the descheduled thread (measured 20 tokens/s at 2 threads against 123 at 1 on this
shared machine) — ``HFBackendConfig.cpu_threads`` sets it. ``processes`` > 1 splits a call's
prompts over forked single-thread processes instead (``llm.forked``): at 32 prompts x k=4,
two processes of 64 rows each sampled 391 tokens/s against 355 for one process on two threads
(idle cores), and 179 against 79 with one busy process beside them (16 prompts).

Anything the fast path does not cover (other architectures, length-dependent RoPE, sliding
windows, non-RMS norms, q/k norms) runs the same loop through the model's own forward with a
transformers cache (prompts still prefilled once, the cache repeated to their k rows); the
reason is logged once per model.

Sampling is greedy at temperature 0, else pure temperature sampling (no top-k / top-p), drawn
from the caller's ``torch.Generator`` only: the same inputs, seed and thread count give the
same outputs. Each generated token carries its log-probability under the model's unscaled
(temperature-1) distribution, from fp32 logits; RL compares it with the trainer's
teacher-forced log-probs (they agree to ~1e-5 in fp32). A prompt may come with a grammar
(``llm.enforcer``: the tool-call enforcer); its rows then draw only tokens the grammar allows,
the recorded log-probs staying the model's own.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from kimi_pipeline.llm.forked import can_fork, run_forked, split_by_cost
from kimi_pipeline.llm.llama_weights import Layer, LlamaWeights, fast_path_refusal
from kimi_pipeline.llm.prefix_cache import Extension, PrefixCache

log = logging.getLogger(__name__)

_WARNED: set[tuple[int, str]] = set()


@dataclass
class Sample:
    """One generated row: its tokens (stop token included), their log-probs, why it ended."""

    token_ids: list[int]
    logprobs: list[float]  # log p(token) under the temperature-1 distribution
    stopped: bool  # True: a stop token ended it; False: its token budget ran out


@dataclass
class SamplerStats:
    """Running totals: calls, prefills (one per distinct prompt on the fast path), times."""

    calls: int = 0
    prefill_calls: int = 0
    prefill_tokens: int = 0  # prompt tokens run through the model (not those reused)
    decode_steps: int = 0
    sampled_tokens: int = 0
    compactions: int = 0
    prefix_reused_tokens: int = 0  # prompt tokens whose keys/values came from the prefix cache
    constrained_tokens: int = 0  # tokens drawn under a grammar's mask (inside a tool call)
    grammar_rejections: int = 0  # rows whose grammar refused a drawn token (then unconstrained)
    prefill_s: float = 0.0  # wall seconds (of the slowest process when a call is split)
    decode_s: float = 0.0

    def add_parts(self, parts: Sequence[SamplerStats]) -> None:
        """Fold in the stats of one call's parallel parts: counts add up, seconds are the
        slowest part's (they ran side by side)."""
        for name in ("prefill_calls", "prefill_tokens", "decode_steps", "sampled_tokens",
                     "compactions", "prefix_reused_tokens", "constrained_tokens",
                     "grammar_rejections"):
            setattr(self, name, getattr(self, name) + sum(getattr(p, name) for p in parts))
        self.prefill_s += max(p.prefill_s for p in parts)
        self.decode_s += max(p.decode_s for p in parts)


@dataclass
class _Batch:
    """What one ``sample`` call decodes: rows = prompts x k, consecutive per prompt."""

    prompts: list[list[int]]
    k: int
    budgets: list[int]  # per row
    stops: list[frozenset[int]]  # per row
    grammars: list[Any] | None = None  # per row: a compiled grammar (llm.enforcer) or None
    width: int = field(init=False)  # longest prompt: every prompt is left-padded to it
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = len(self.prompts) * self.k
        self.width = max(len(p) for p in self.prompts)

    def span(self, row: int) -> int:
        """Positions a row may reach: its prompt plus its budget."""
        return len(self.prompts[row // self.k]) + self.budgets[row]


# ------------------------------------------------------------------------------ public API


class Sampler:
    """Samples from ``model`` (an HF causal LM, eval mode); the fast path when it applies."""

    def __init__(self, model: Any, fast: bool = True, processes: int = 1,
                 prefix_cache_bytes: int = 0, enforcer: Any = None):
        """``fast=False`` forces the generic path through the model's own forward.
        ``processes`` > 1 splits each call's prompts over that many processes (``llm.forked``:
        forked, each with the caller's torch thread count) where the model is on a CPU.
        ``prefix_cache_bytes`` > 0 keeps that much of prefilled prompts' keys/values
        (``llm.prefix_cache``, fast path only): a later prompt prefills only what follows its
        longest cached prefix. ``enforcer`` (``llm.enforcer.ToolCallEnforcer``) makes the
        matchers of prompts sampled with a grammar."""
        self.model = model
        self.processes = processes
        self.enforcer = enforcer
        reason = fast_path_refusal(model) if fast else "fast path switched off"
        self.path = "fast" if reason is None else "hf"
        self.reason = reason
        self.stats = SamplerStats()
        self._weights: LlamaWeights | None = None
        self.prefixes = (PrefixCache(prefix_cache_bytes)
                         if prefix_cache_bytes > 0 and self.path == "fast" else None)
        if reason is not None and fast:
            key = (id(model), reason)
            if key not in _WARNED:
                _WARNED.add(key)
                log.info("decode: %s uses the generic HF-forward path: %s",
                         type(model).__name__, reason)

    @torch.inference_mode()
    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        stop_ids: Collection[int] | Sequence[Collection[int]] = (),
        temperature: float = 1.0,
        k: int = 1,
        generator: torch.Generator | None = None,
        grammars: Sequence[Any] | None = None,
    ) -> list[Sample]:
        """``k`` samples of each prompt (rows ``i*k … i*k+k-1`` for prompt ``i``).

        ``max_new_tokens``: one budget, or one per prompt, or one per row. ``stop_ids``: one
        set for every row, or one set per prompt or per row. ``temperature`` 0 is greedy.
        ``generator`` draws every sample (torch's global RNG when None). ``grammars``: one
        per prompt (None: unconstrained), from the sampler's ``enforcer``."""
        if not prompts or k < 1:
            return []
        batch = self._batch(prompts, max_new_tokens, stop_ids, k, grammars)
        self.stats.calls += 1
        if max(batch.budgets) == 0:
            return [Sample([], [], False) for _ in range(batch.rows)]
        device = next(self.model.parameters()).device
        if self.processes > 1 and len(batch.prompts) > 1 and can_fork(device):
            return self._sample_forked(batch, temperature, generator, device)
        return _Loop(self._engine(self.stats), batch, temperature, generator, self.stats,
                     self._masks(batch)).run()

    def _sample_forked(self, batch: _Batch, temperature: float,
                       generator: torch.Generator | None, device: torch.device) -> list[Sample]:
        """Contiguous parts of the prompts, of about equal cost, one per process; each part
        draws from a generator seeded from ``generator``."""
        if self.path == "fast":
            self._fast_weights()  # fused before forking: the children share them
        k = batch.k
        costs = [len(p) + sum(batch.budgets[i * k:(i + 1) * k])
                 for i, p in enumerate(batch.prompts)]
        ranges = split_by_cost(costs, self.processes)
        seeds = torch.randint(2 ** 62, (len(ranges),), generator=generator).tolist()

        def part(prompts: range, seed: int):
            def run() -> tuple[list[Sample], SamplerStats, list[Extension]]:
                rows = slice(prompts.start * k, prompts.stop * k)
                sub = _Batch([batch.prompts[i] for i in prompts], k, batch.budgets[rows],
                             batch.stops[rows], batch.grammars[rows] if batch.grammars else None)
                stats = SamplerStats()
                draw = torch.Generator(device=device).manual_seed(seed)
                engine = self._engine(stats)
                samples = _Loop(engine, sub, temperature, draw, stats, self._masks(sub)).run()
                return samples, stats, getattr(engine, "extensions", [])
            return run

        results = run_forked([part(r, s) for r, s in zip(ranges, seeds)],
                             torch.get_num_threads())
        self.stats.add_parts([stats for _, stats, _ in results])
        if self.prefixes is not None:  # the first part ran here and filled this cache itself;
            # a child's additions die with it unless sent back (only what it computed)
            for _, _, extensions in results[1:]:
                for extension in extensions:
                    self.prefixes.add(extension)
        return [sample for samples, _, _ in results for sample in samples]

    # -------------------------------------------------------------- set-up

    def _batch(self, prompts, budgets, stops, k: int, grammars=None) -> _Batch:
        prompts = [list(map(int, p)) for p in prompts]
        if any(not p for p in prompts):
            raise ValueError("every prompt needs at least one token")
        budgets = _per_row(budgets, len(prompts), k, "max_new_tokens")
        stops = _stop_sets(stops, len(prompts), k)
        if min(budgets) < 0:
            raise ValueError("token budgets must be >= 0")
        if grammars is None or all(g is None for g in grammars):
            return _Batch(prompts, k, budgets, stops)
        if self.enforcer is None:
            raise ValueError("grammars given to a Sampler built without an enforcer")
        if len(grammars) != len(prompts):
            raise ValueError(f"grammars: {len(grammars)} for {len(prompts)} prompts")
        return _Batch(prompts, k, budgets, stops, [g for g in grammars for _ in range(k)])

    def _masks(self, batch: _Batch) -> Any:
        """The rows' grammar matchers (``llm.enforcer.RowMasks``), None when no row has one;
        made where the rows are decoded (a forked part makes its own)."""
        if not batch.grammars or self.enforcer is None:
            return None
        return self.enforcer.row_masks(batch.grammars)

    def _engine(self, stats: SamplerStats) -> _Engine:
        if self.path == "hf":
            return _HFEngine(self.model, stats)
        return _FastEngine(self._fast_weights(), stats, self.prefixes)

    def _fast_weights(self) -> LlamaWeights:
        """The fused weights, rebuilt when the model's parameters have changed (the prefix
        cache, computed with the old ones, is emptied)."""
        if self._weights is None or self._weights.stale():
            self._weights = LlamaWeights(self.model)
            if self.prefixes is not None:
                self.prefixes.clear()
        return self._weights


def _per_row(values, prompts: int, k: int, name: str) -> list[int]:
    if isinstance(values, int):
        return [values] * (prompts * k)
    values = [int(v) for v in values]
    if len(values) == prompts:
        return [v for v in values for _ in range(k)]
    if len(values) == prompts * k:
        return values
    raise ValueError(f"{name}: {len(values)} values for {prompts} prompts x {k} samples")


def _stop_sets(stops, prompts: int, k: int) -> list[frozenset[int]]:
    stops = list(stops)
    if not stops or all(isinstance(s, int) for s in stops):
        return [frozenset(stops)] * (prompts * k)
    sets = [frozenset(int(t) for t in s) for s in stops]
    if len(sets) == prompts:
        return [s for s in sets for _ in range(k)]
    if len(sets) == prompts * k:
        return sets
    raise ValueError(f"stop_ids: {len(sets)} sets for {prompts} prompts x {k} samples")


# ------------------------------------------------------------------------------ the loop


class _Loop:
    """Draw, record, stop, compact, step: the part both engines share."""

    def __init__(self, engine: _Engine, batch: _Batch, temperature: float,
                 generator: torch.Generator | None, stats: SamplerStats, masks: Any = None):
        self.engine, self.batch, self.stats, self.masks = engine, batch, stats, masks
        self.temperature, self.generator = float(temperature), generator
        self.tokens: list[list[int]] = [[] for _ in range(batch.rows)]
        self.logprobs: list[list[float]] = [[] for _ in range(batch.rows)]
        self.stopped = [False] * batch.rows
        self.done = [b == 0 for b in batch.budgets]
        self.live = list(range(batch.rows))  # the row of each batch position

    def run(self) -> list[Sample]:
        start = time.perf_counter()
        logits = self.engine.prefill(self.batch)
        self.stats.prefill_s += time.perf_counter() - start
        start = time.perf_counter()
        for step in range(max(self.batch.budgets)):
            token, logprob = pick(logits, self.temperature, self.generator, self._mask())
            if self._record(token.tolist(), logprob.tolist()):
                break
            token = self._compact(token)
            logits = self.engine.step(token, step)
            self.stats.decode_steps += 1
        self.stats.decode_s += time.perf_counter() - start
        return [Sample(t, p, s) for t, p, s in zip(self.tokens, self.logprobs, self.stopped)]

    def _mask(self) -> Callable[[torch.Tensor], None] | None:
        """What sets the tokens the live rows' grammars forbid next to -inf; None when no live
        row is inside a constrained call this step (the scores are then not copied)."""
        if self.masks is None:
            return None
        positions = self.masks.fill(self.live)
        self.stats.constrained_tokens += len(positions)
        return (lambda scores: self.masks.apply(scores, positions)) if positions else None

    def _record(self, tokens: list[int], logprobs: list[float]) -> bool:
        """Append each live row's token; True when every row is done."""
        for position, row in enumerate(self.live):
            if self.done[row]:
                continue
            token = tokens[position]
            if self.masks is not None:
                self.stats.grammar_rejections += not self.masks.accept(row, token)
            self.tokens[row].append(token)
            self.logprobs[row].append(logprobs[position])
            self.stats.sampled_tokens += 1
            if token in self.batch.stops[row]:
                self.stopped[row] = self.done[row] = True
            elif len(self.tokens[row]) >= self.batch.budgets[row]:
                self.done[row] = True
        return all(self.done[row] for row in self.live)

    def _compact(self, token: torch.Tensor) -> torch.Tensor:
        """Drop finished rows from the batch as soon as they finish: a dead row would cost its
        share of every later step, and dropping one is cheap (the fast path's cache is grouped
        by prompt: only a prompt whose k rows all ended is copied out)."""
        keep = [i for i, row in enumerate(self.live) if not self.done[row]]
        if len(keep) == len(self.live) or not self.engine.can_compact:
            return token
        index = torch.tensor(keep, dtype=torch.long, device=token.device)
        self.engine.keep(index)
        self.live = [self.live[i] for i in keep]
        self.stats.compactions += 1
        return token.index_select(0, index)


def pick(logits: torch.Tensor, temperature: float, generator: torch.Generator | None,
         mask: Callable[[torch.Tensor], None] | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row (greedy at temperature 0, else drawn from softmax(logits / T)) and
    its log-probability under softmax(logits), both from fp32 logits. ``mask`` sets the scores
    of tokens a row may not take to -inf in a copy: the token is drawn from what is left, its
    log-probability stays the model's.

    Drawn by inverse CDF (one uniform per row, ``searchsorted`` on the cumulative sum):
    ~5 ms for 32 x 49k logits, where ``torch.multinomial`` takes ~80 ms on CPU."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    scores = logp
    if mask is not None:
        scores = logp.clone()
        mask(scores)
    if temperature <= 0:
        token = scores.argmax(dim=-1, keepdim=True)
    else:
        # unnormalised after a mask: the uniform is scaled by the total below
        probs = (scores.exp() if temperature == 1.0
                 else torch.softmax(scores / temperature, dim=-1))
        cdf = probs.cumsum_(dim=-1)
        u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
        token = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[1] - 1)
    return token.squeeze(1), logp.gather(1, token).squeeze(1)


# ------------------------------------------------------------------------------ engines


class _Engine(Protocol):
    """Prefill a batch, then one token per row per step. An engine whose ``can_compact`` is
    true also has ``keep(index)``, which drops every row not in ``index`` (finished rows)."""

    can_compact: bool

    def prefill(self, batch: _Batch) -> torch.Tensor: ...  # logits [rows, vocab]

    def step(self, token: torch.Tensor, step: int) -> torch.Tensor: ...


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return x @ w if b is None else torch.addmm(b, x, w)


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm as HF Llama computes it: in fp32, cast back, then scaled (one fused op in fp32,
    where that is the same thing)."""
    if x.dtype == torch.float32 and weight.dtype == torch.float32:
        return F.rms_norm(x, weight.shape, weight, eps)
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [..., heads, head_dim]`` (``cos``/``sin`` broadcast over heads)."""
    half = x.shape[-1] // 2
    swapped = torch.cat((x[..., half:], x[..., :half]), dim=-1)
    return torch.addcmul(x * cos, swapped, sin)


class _FastEngine:
    """The hand-written Llama-family forward over preallocated KV caches written in place.

    The cache is grouped by prompt: per layer, keys ``[prompts, kv heads, d, columns]`` (stored
    transposed: the score matmul runs ~1.7x faster) and values ``[prompts, kv heads, columns,
    d]``, where the first ``width`` columns hold the prompt (once, left-padded) and column
    ``width + step * k + j`` the token of sample ``j`` at ``step``. A decode step is then one
    attention per (prompt, KV head) for the queries of its k rows x its query heads together:
    the prompt's keys are read once for its k samples, and the columns a step reads are a
    prefix of the cache. A fixed mask lets sample ``j`` see the prompt and its own tokens."""

    can_compact = True

    def __init__(self, weights: LlamaWeights, stats: SamplerStats,
                 prefixes: PrefixCache | None = None):
        self.w, self.stats, self.prefixes = weights, stats, prefixes
        self.extensions: list[Extension] = []  # what this engine's prefills added to the cache

    def prefill(self, batch: _Batch) -> torch.Tensor:
        w, k = self.w, batch.k
        device, dtype = w.embed.device, w.embed.dtype
        self.k, self.width, prompts = k, batch.width, len(batch.prompts)
        columns = batch.width + k * max(batch.budgets)
        # zeros, not empty: masked columns still meet 0 x value in the matmul (NaN x 0 = NaN)
        self.keys = [torch.zeros(prompts, w.kv_heads, w.head_dim, columns, dtype=dtype,
                                 device=device) for _ in w.layers]
        self.values = [torch.zeros(prompts, w.kv_heads, columns, w.head_dim, dtype=dtype,
                                   device=device) for _ in w.layers]
        self.cos, self.sin = w.rope(max(batch.span(r) for r in range(batch.rows)), dtype)
        lengths = torch.tensor([len(p) for p in batch.prompts], device=device)
        self.bias = self._mask(lengths, columns, dtype)
        self.positions = lengths.repeat_interleave(k)  # of each row's first new token
        self.row_prompt = torch.arange(prompts, device=device).repeat_interleave(k)
        self.slots: torch.Tensor | None = None  # live rows' slots in [prompts x k]; None = all
        logits = torch.empty(batch.rows, w.head.shape[1], dtype=dtype, device=device)
        for i, prompt in enumerate(batch.prompts):
            logits[i * k:(i + 1) * k] = self._prefill_one(prompt, i)
        return logits

    def _mask(self, lengths: torch.Tensor, columns: int, dtype) -> torch.Tensor:
        """Additive mask ``[prompts, 1, k * groups, columns]``: query ``j * groups + h`` (sample
        ``j``) sees its prompt's real tokens and the columns of sample ``j``."""
        w, device = self.w, lengths.device
        column = torch.arange(columns, device=device)
        prompt = column[None, :] >= (self.width - lengths)[:, None]  # [prompts, columns]
        sample = torch.arange(self.k * (w.q_heads // w.kv_heads), device=device)
        sample = sample // (w.q_heads // w.kv_heads)
        own = (column[None, :] >= self.width) & ((column - self.width) % self.k == sample[:, None])
        visible = (prompt[:, None, :] & (column < self.width)) | own[None]
        bias = torch.zeros(visible.shape, dtype=dtype, device=device)
        return bias.masked_fill_(~visible, float("-inf"))[:, None]

    def _prefill_one(self, prompt: list[int], index: int) -> torch.Tensor:
        """Run one prompt (no padding, causal attention), write its keys/values into its
        prompt columns, return its last position's logits ``[1, vocab]``. With a prefix cache,
        the keys/values of its longest cached prefix are copied in and only the rest is run
        (attending to the copied prefix), and what was run is added to the cache."""
        w, n = self.w, len(prompt)
        reused, cached_keys, cached_values = (self.prefixes.lookup(prompt)
                                              if self.prefixes is not None else (0, [], []))
        self.stats.prefill_calls += 1
        self.stats.prefill_tokens += n - reused
        self.stats.prefix_reused_tokens += reused
        x = w.embed[torch.tensor(prompt[reused:], device=w.embed.device)]
        cos, sin = self.cos[reused:n, None], self.sin[reused:n, None]
        start = self.width - n
        at, new = slice(start, self.width), slice(start + reused, self.width)
        # query a (prompt position reused + a) sees key columns 0 … reused + a
        visible = (None if not reused else torch.arange(n, device=x.device)[None, :]
                   <= torch.arange(reused, n, device=x.device)[:, None])
        for i in range(len(w.layers) if reused else 0):
            self.keys[i][index, :, :, start:start + reused] = cached_keys[i][..., :reused]
            self.values[i][index, :, start:start + reused] = cached_values[i][:, :reused]
        for i, layer in enumerate(w.layers):
            q, key, value = self._qkv(x, layer, i, cos, sin)
            key, value = key.transpose(0, 1), value.transpose(0, 1)  # [kv heads, n - reused, d]
            self.keys[i][index, :, :, new] = key.transpose(1, 2)
            self.values[i][index, :, new] = value
            if reused:
                key = self.keys[i][index, :, :, at].transpose(1, 2)
                value = self.values[i][index, :, at]
            out = F.scaled_dot_product_attention(
                q.transpose(0, 1)[None], key[None], value[None], attn_mask=visible,
                is_causal=not reused, scale=w.scale, enable_gqa=True)
            x = self._rest(x, out[0].transpose(0, 1).reshape(n - reused, -1), layer, i)
        if self.prefixes is not None:
            extension = Extension(tuple(prompt), reused,
                                  [c[index, :, :, new].clone() for c in self.keys],
                                  [c[index, :, new].clone() for c in self.values])
            self.prefixes.add(extension)
            self.extensions.append(extension)  # a forked part sends these to its parent
        return self._head(x[-1:])

    def step(self, token: torch.Tensor, step: int) -> torch.Tensor:
        """Feed each live row's last token (sample ``j``'s goes to column width + step*k + j)."""
        w = self.w
        x = w.embed[token]
        position = self.positions + step
        cos, sin = self.cos[position][:, None], self.sin[position][:, None]
        at = slice(self.width + step * self.k, self.width + (step + 1) * self.k)
        for i, layer in enumerate(w.layers):
            q, key, value = self._qkv(x, layer, i, cos, sin)
            self.keys[i][..., at] = self._group(key[:, :, None]).transpose(-1, -2)
            self.values[i][:, :, at] = self._group(value[:, :, None])
            x = self._rest(x, self._attend(q, i, at.stop), layer, i)
        return self._head(x)

    def _attend(self, q: torch.Tensor, i: int, columns: int) -> torch.Tensor:
        """Attention of ``q [rows, q heads, d]`` over the first ``columns`` cache columns of
        its prompt group; returns ``[rows, q heads * d]``."""
        w, rows = self.w, q.shape[0]
        q = self._group(q.view(rows, w.kv_heads, -1, w.head_dim))
        scores = torch.matmul(q, self.keys[i][..., :columns]).mul_(w.scale)
        probs = torch.softmax(scores.add_(self.bias[..., :columns]), dim=-1)
        out = torch.matmul(probs, self.values[i][:, :, :columns])
        return self._ungroup(out).reshape(rows, -1)

    def _group(self, x: torch.Tensor) -> torch.Tensor:
        """Rows ``[rows, kv, m, d]`` to ``[prompts, kv, k*m, d]``: the k rows of a prompt side
        by side per KV head (a dead row's slot holds zeros)."""
        if self.slots is not None:
            full = x.new_zeros((self.keys[0].shape[0] * self.k, *x.shape[1:]))
            x = full.index_copy_(0, self.slots, x)
        x = x.reshape(-1, self.k, *x.shape[1:]).transpose(1, 2)
        return x.reshape(x.shape[0], x.shape[1], -1, x.shape[-1])

    def _ungroup(self, x: torch.Tensor) -> torch.Tensor:
        """``[prompts, kv, k*m, d]`` back to the live rows ``[rows, kv, m, d]``."""
        x = x.reshape(x.shape[0], x.shape[1], self.k, -1, x.shape[-1]).transpose(1, 2)
        x = x.reshape(-1, *x.shape[2:])
        return x if self.slots is None else x.index_select(0, self.slots)

    def _qkv(self, x, layer: Layer, i: int, cos, sin):
        """q ``[n, q heads, d]``, k and v ``[n, kv heads, d]`` of ``x [n, hidden]``, roped."""
        w = self.w
        h = _rms(x, layer.ln1, w.eps_layers[i][0])
        qkv = _linear(h, layer.wqkv, layer.bqkv)
        roped = (w.q_heads + w.kv_heads) * w.head_dim
        qk = _rope(qkv[:, :roped].view(x.shape[0], -1, w.head_dim), cos, sin)
        value = qkv[:, roped:].view(x.shape[0], w.kv_heads, w.head_dim)
        return qk[:, :w.q_heads], qk[:, w.q_heads:], value

    def _rest(self, x, attended, layer: Layer, i: int) -> torch.Tensor:
        """Output projection, residual, MLP, residual."""
        x = x + _linear(attended, layer.wo, layer.bo)
        h = _rms(x, layer.ln2, self.w.eps_layers[i][1])
        gate, up = _linear(h, layer.wgu, layer.bgu).chunk(2, dim=-1)
        return x + _linear(F.silu(gate).mul_(up), layer.wd, layer.bd)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return _linear(_rms(x, self.w.norm, self.w.eps), self.w.head, self.w.head_bias)

    def keep(self, index: torch.Tensor) -> None:
        """Keep the live rows ``index``; the cache keeps the prompts that still have one."""
        self.positions = self.positions.index_select(0, index)
        slots = (torch.arange(self.row_prompt.shape[0], device=index.device) if self.slots is None
                 else self.slots)
        sample = slots.index_select(0, index) % self.k
        prompts, self.row_prompt = torch.unique(self.row_prompt.index_select(0, index),
                                                return_inverse=True)
        if prompts.shape[0] < self.keys[0].shape[0]:
            self.keys = [c.index_select(0, prompts) for c in self.keys]
            self.values = [c.index_select(0, prompts) for c in self.values]
            self.bias = self.bias.index_select(0, prompts)
        slots = self.row_prompt * self.k + sample
        full = slots.shape[0] == self.keys[0].shape[0] * self.k  # then slots are 0, 1, 2, …
        self.slots = None if full else slots


class _HFEngine:
    """Any causal LM through its own forward and a transformers cache: prompts prefilled once
    (left-padded together), the cache repeated to k rows, then one token per step."""

    can_compact = False

    def __init__(self, model: Any, stats: SamplerStats):
        self.model, self.stats = model, stats
        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.last_only = ({"logits_to_keep": 1} if "logits_to_keep" in params else
                          {"num_logits_to_keep": 1} if "num_logits_to_keep" in params else {})

    def prefill(self, batch: _Batch) -> torch.Tensor:
        device = next(self.model.parameters()).device
        ids = torch.zeros(len(batch.prompts), batch.width, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(batch.prompts):
            ids[row, batch.width - len(prompt):] = torch.tensor(prompt, device=device)
            mask[row, batch.width - len(prompt):] = 1
        logits = self._prefill(ids, mask)
        if batch.k > 1 and hasattr(self.cache, "batch_repeat_interleave"):
            self.cache.batch_repeat_interleave(batch.k)
        elif batch.k > 1:  # a cache that cannot be repeated: prefill every row instead
            logits = self._prefill(ids.repeat_interleave(batch.k, 0),
                                   mask.repeat_interleave(batch.k, 0))
            return logits
        self.mask = mask.repeat_interleave(batch.k, 0)
        self.positions = self.mask.sum(-1)
        return logits.repeat_interleave(batch.k, 0)

    def _prefill(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = (mask.cumsum(-1) - 1).clamp_(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, **self.last_only)
        self.stats.prefill_calls += 1
        self.stats.prefill_tokens += ids.numel()
        self.cache, self.mask, self.positions = _cache_of(out), mask, mask.sum(-1)
        return out.logits[:, -1]

    def step(self, token: torch.Tensor, step: int) -> torch.Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        out = self.model(input_ids=token[:, None], attention_mask=self.mask,
                         position_ids=(self.positions + step)[:, None], use_cache=True,
                         **{self.cache_arg: self.cache})
        self.cache = _cache_of(out)
        return out.logits[:, -1]


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values
