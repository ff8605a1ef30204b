"""One protocol for every LLM role (tool evolver, task writer, user simulator, agent, judge …).

Role code builds a ``ChatRequest`` — the messages a real model would read, plus the
structured ``context`` those messages were rendered from — and gets back a ``ChatResponse``.
Remote backends send the messages; the offline backend runs a deterministic program chosen by
``role`` over ``context``. Either way the role code parses and validates the reply the same
way, so swapping backends changes no stage code.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal, Protocol, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter,
                      model_validator)

from kimi_pipeline.records import ToolCall
from kimi_pipeline.registry import Registry


@dataclass
class ChatRequest:
    """What a role asks of a model."""

    role: str  # the role speaking, e.g. "tool_evolver"; selects the offline program
    messages: list[dict[str, Any]]  # OpenAI chat format
    tools: list[dict[str, Any]] | None = None  # OpenAI function-calling tools
    response_format: Literal["text", "json"] = "text"
    context: dict[str, Any] = field(default_factory=dict)  # structured inputs of the prompt
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class ChatResponse:
    """A model's reply; ``error`` is set (and content empty) when the call failed for good."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    backend: str = ""
    error: str | None = None
    cached: bool = False
    meta: dict[str, Any] = field(default_factory=dict)  # backend specifics (offline: injected imperfections)


class ChatBackend(Protocol):
    name: str

    async def acomplete(self, request: ChatRequest) -> ChatResponse: ...


class BackendSettings(BaseModel):
    """What every backend reads: the model's name and a request's defaults. One subclass per
    ``kind`` adds its own fields, so a backend carries only what it uses (an ``hf`` field in an
    ``openai`` block is refused at load with its name)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "offline", description="Model name sent to the endpoint ('hf': the model folder when "
        "model_path is not set)."
    )
    temperature: float = Field(0.7, ge=0, description="Default sampling temperature.")
    max_tokens: int = Field(2048, ge=1, description="Default completion length cap.")
    seed: int = Field(0, description="Seed for deterministic offline programs / endpoint sampling.")


class OfflineBackendConfig(BackendSettings):
    """``kind: offline``: deterministic programs registered per role (``llm/offline.py``); no
    network, no model."""

    kind: Literal["offline"] = Field("offline", description="Deterministic programs, no network.")


class OpenAIBackendConfig(BackendSettings):
    """``kind: openai``: any OpenAI-compatible chat-completions endpoint (``llm/openai_backend.py``:
    vLLM, SGLang, a hosted API, or this project's own ``llm/server.py``)."""

    kind: Literal["openai"] = Field("openai", description="An OpenAI-compatible endpoint.")
    base_url: str | None = Field(
        None, description="Endpoint root, e.g. http://localhost:8000/v1 for vLLM/SGLang."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="Name of the environment variable holding the API key (never the key itself).",
    )
    max_concurrency: int = Field(16, ge=1, description="Requests in flight at most.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout in seconds.")
    max_retries: int = Field(4, ge=0, description="Retries with backoff on 429/5xx/timeouts.")
    cache_dir: str | None = Field(
        "data/02_intermediate/llm_cache",
        description="On-disk response cache keyed by request content; null disables it.",
    )
    send_context: bool = Field(
        False, description="openai: also send the request's role and structured context as the "
        "extension fields kimi_role / kimi_context (for kimi_pipeline.llm.server; real endpoints "
        "reject or ignore unknown fields)."
    )


class HFBackendConfig(BackendSettings):
    """``kind: hf``: a local Hugging Face model folder served in process, requests
    micro-batched and decoded together (``llm/hf_backend.py``)."""

    kind: Literal["hf"] = Field("hf", description="A local model folder, batched decoding.")
    model_path: str | None = Field(
        None, description="'hf': local folder with the model and its tokenizer "
        "(save_pretrained layout: our trained model or a real checkpoint)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="'hf': where the model runs; 'auto' = CUDA when available, else CPU."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="'hf': weight dtype; 'auto' = precision.resolve: bfloat16 where the "
        "device multiplies bf16 natively (CUDA with bf16, CPUs with AMX or AVX512-BF16), "
        "float32 elsewhere (an AVX2-only CPU emulates bf16 ~100x slower)."
    )
    cpu_threads: int | None = Field(
        None, ge=1, description="'hf' on CPU: torch threads while generating (restored after); "
        "null keeps torch's default. Small models decode faster on one thread, and a second "
        "thread collapses throughput when another process holds a core (measured 1855 vs 56 "
        "tokens/s on 2 busy cores)."
    )
    cpu_processes: int = Field(
        1, ge=1, description="'hf' sampler 'kimi' on CPU: processes that decode one batch "
        "together, each with cpu_threads threads (llm/forked.py: the prompts split in parts "
        "of equal cost, every part but the first in a child forked for the call, sharing the "
        "weights). Uses every core without the thread collapse above; Linux with the model on the "
        "CPU only, elsewhere 1."
    )
    prefix_cache_mb: float = Field(
        0, ge=0, description="'hf' sampler 'kimi', Llama-family models: memory for the keys/"
        "values of prompts already prefilled (llm/prefix_cache.py); a later prompt that starts "
        "with one prefills only its new tokens. Pays where prompts grow turn by turn (agent "
        "episodes) or share a long system prompt; 0 = off (single-turn sampling such as the "
        "gym's gains nothing). SmolLM2-135M holds 46 KB per token in fp32."
    )
    sampler: Literal["kimi", "hf_generate"] = Field(
        "kimi", description="'hf': how a batch is decoded. 'kimi' = llm.decode.Sampler: one "
        "prefill per distinct prompt shared by its k samples, a hand-written Llama-family decode "
        "step (fused weights, in-place KV cache; other architectures go through the model's own "
        "forward), finished rows dropped; returns per-token log-probs. 'hf_generate' = "
        "transformers' model.generate (kv_cache below; no log-probs). Measured by "
        "bench/sampling_speed.py on SmolLM2-135M, fp32, 8 prompts x 4 samples x 128 tokens, one "
        "thread of a shared 2-core Xeon: 'kimi' 119 sampled tokens/s, 'hf_generate' 50 (2.4x; "
        "every row to its budget: 144 vs 69); 'kimi' on two idle cores: 218."
    )
    kv_cache: Literal["static", "dynamic"] = Field(
        "static", description="'hf': KV cache kind. 'static' preallocates prompt + budget once; "
        "'dynamic' grows by concatenation and re-copies the whole cache every token (3.5× "
        "slower decoding measured on CPU at 1.8k-token prompts, batch 16). Only for sampler "
        "'hf_generate' ('kimi' always preallocates)."
    )
    max_batch_size: int = Field(
        16, ge=1, description="'hf': requests (rows) decoded together in one generate call."
    )
    batch_wait_ms: float = Field(
        5.0, ge=0, description="'hf': after a request arrives, wait at most this long for more "
        "to join its batch (0: batch only what is already queued)."
    )
    context_length: int | None = Field(
        None, ge=2, description="'hf': tokens of prompt + completion at most; null = the "
        "model's max_position_embeddings. A longer prompt is answered with an error."
    )
    tool_format: str = Field(
        "auto", description="'hf': how the model writes tool calls (llm.tool_parsing: kimi, "
        "hermes, json); 'auto' detects it from the tokenizer's chat template."
    )
    tool_call_enforcer: bool = Field(
        False, description="'hf' sampler 'kimi': constrained decoding of tool calls "
        "(llm/enforcer.py, K2's 'enforcer'): once a reply opens a call (kimi or hermes tags), "
        "it names an offered tool and writes arguments valid for its schema; free text and the "
        "choice to call are not constrained. Log-probs stay the model's own."
    )

    @model_validator(mode="after")
    def _enforcer_needs_the_kimi_sampler(self) -> "HFBackendConfig":
        if self.tool_call_enforcer and self.sampler != "kimi":
            raise ValueError("tool_call_enforcer needs sampler 'kimi' (hf_generate decodes "
                             "without grammars)")
        return self


BACKEND_CONFIGS: dict[str, type[BackendSettings]] = {
    "offline": OfflineBackendConfig, "openai": OpenAIBackendConfig, "hf": HFBackendConfig}


def _kind(value: Any) -> str:
    """The ``kind`` a backend block names (``offline`` when it names none, as before kinds)."""
    kind = value.get("kind", "offline") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in BACKEND_CONFIGS else "unknown"


# A backend block of the parameters: the model of its ``kind`` (a union keyed on ``kind``)
BackendConfig = Annotated[
    Union[Annotated[OfflineBackendConfig, Tag("offline")],
          Annotated[OpenAIBackendConfig, Tag("openai")],
          Annotated[HFBackendConfig, Tag("hf")]],
    Discriminator(_kind, custom_error_type="backend_kind",
                  custom_error_message="kind must be one of: offline, openai, hf"),
]
_BACKEND_CONFIG = TypeAdapter(BackendConfig)


def backend_config(fields: dict[str, Any] | BackendSettings | None = None) -> BackendSettings:
    """The validated backend block for ``fields`` (a dict from the parameters, or a model)."""
    if isinstance(fields, BackendSettings):
        return fields
    return _BACKEND_CONFIG.validate_python(fields or {})


# where each backend is defined: importing it registers it (torch is imported only for 'hf');
# this module imports none of them, so there is no import circle with its implementations
BACKEND_MODULES = {
    "offline": "kimi_pipeline.llm.offline",
    "openai": "kimi_pipeline.llm.openai_backend",
    "hf": "kimi_pipeline.llm.hf_backend",
}
_BACKENDS: Registry[Callable[[BackendSettings], ChatBackend]] = Registry(
    "LLM backend", lazy=BACKEND_MODULES)
register_backend = _BACKENDS.register  # a backend factory under its ``kind``


def make_backend(config: BackendSettings | dict[str, Any]) -> ChatBackend:
    """The backend a (validated or raw) backend block describes."""
    config = backend_config(config)
    return _BACKENDS.lookup(config.kind)(config)


def complete_many(
    backend: ChatBackend, requests: list[ChatRequest], progress: Callable[[int], None] | None = None
) -> list[ChatResponse]:
    """Run requests concurrently (bounded by the backend) and return replies in order."""

    async def run() -> list[ChatResponse]:
        async def one(request: ChatRequest) -> ChatResponse:
            reply = await backend.acomplete(request)
            if progress:
                progress(1)
            return reply

        return await asyncio.gather(*(one(r) for r in requests))

    return asyncio.run(run())


def timed(start: float) -> float:
    return time.perf_counter() - start
