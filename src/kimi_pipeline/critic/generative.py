"""The generative critic (K2's form): the policy itself, fine-tuned to write a pairwise verdict.

K2's critic is the policy answering a comparison prompt. Here the prompt is a system message
listing the rubrics that apply to the prompt's context (title and description) and asking for
JSON only, ``{"better": "A"}`` or ``{"better": "B"}``; the user turn shows the prompt and the two
responses as ``[Response A]`` and ``[Response B]``.

Judging costs one forward pass per query and samples nothing. The chat is rendered twice, with
the assistant turn ``{"better": "A"}`` and ``{"better": "B"}``; the first token position where
the two token sequences differ is the verdict token (found per query, so any tokenizer works,
whether it merges the quote into the letter or not). The shared prefix up to that position is
fed once, and P(first better) is the softmax over the logits of the two differing tokens at the
last prefix position. Queries are batched (right padding, attention mask, logits read only at
each row's last real position). Mandatory prescriptive rules decide a pair in code exactly as
for the ``bradley_terry`` kind (``rule_verdict``, ``enforce_rules``); such queries never reach
the model. Per-rubric verdicts come from the rules only: the model writes one overall verdict,
so rubrics without a rule get none.

Fitting is supervised fine-tuning through the project's own SFT trainer (``training/sft.py``,
DeepSpeed workers in their own processes): every preference pair becomes two examples, the
chosen response shown as A (target ``"A"``) and as B (target ``"B"``), so the only way to lower
the loss is to read the responses, not their position. About 10 % of the pairs (at least one,
from 10 pairs on) go to the validation split for the held-out loss. The SFT configuration is
``DEFAULT_SFT`` deep-merged with the ``sft`` dict of the critic's state (``make_critic`` passes
``CriticModelConfig.sft``); the run starts from the critic's current weights and
the critic then reads the run's ``final`` folder. Runs are named by the SFT fingerprint (data,
initial weights, config), so fitting again on the same pairs reuses the finished run; the
``final`` folder gets a ``weights_digest`` of its files in ``kimi_metadata.json``, so a later fit
from fitted weights is told apart from one from other weights of the same shapes.

Measured on SmolLM2-135M on a 2-core CPU: 147 verifier pairs (both orders, ~326 tokens each),
2 epochs of fine-tuning the last 10 layers (8 min) left the critic picking the same position
for every pair — 100 % → 82 % → 100 % contradictions over the run, 0 % strict agreement on
held-out tasks. That is why ``bradley_terry`` is the default at this size; the generative kind
is for larger policies trained on GPUs.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import torch

from kimi_pipeline import precision
from kimi_pipeline.critic.model import (
    CriticModelConfig,
    clip,
    load_for_inference,
    register_critic,
    rule_verdict,
    save_with_state,
)
from kimi_pipeline.critic.pairwise import Judgement, PairQuery
from kimi_pipeline.critic.rubrics import RubricSet
from kimi_pipeline.records import PreferencePair
from kimi_pipeline.training import sft
from kimi_pipeline.training.optim import merge_ds_config
from kimi_pipeline.model_folder import METADATA_FILE, ModelFolder

log = logging.getLogger(__name__)

VERDICTS = {"A": json.dumps({"better": "A"}), "B": json.dumps({"better": "B"})}

# The SFT run of ``fit`` unless the state's ``sft`` dict overrides keys (deep merge). Steps come
# from the epochs over the packed rows (about examples / micro-batch per epoch at ~1 example per
# row); adamw at a small lr moves a pretrained policy without erasing it; every layer trains
# (``train.trainable_layers`` limits it to the top N blocks).
DEFAULT_SFT: dict[str, Any] = {
    "train": {"seq_len": 1024, "micro_batch_size": 4, "epochs": 2.0, "warmup_steps": 5,
              "eval_every": 50, "eval_rows": 32, "checkpoint_every": 50,
              "trainable_layers": None},
    "optimizer": {"name": "adamw", "lr": 1e-4},
    "runs_dir": "data/06_models/critic_runs",
    "progress": False,
}
VALIDATION_SHARE = 0.1  # of the pairs, from MIN_PAIRS_FOR_VALIDATION pairs on
MIN_PAIRS_FOR_VALIDATION = 10


def sft_config(override: Mapping[str, Any] | None = None) -> sft.SftConfig:
    """``DEFAULT_SFT`` deep-merged with ``override`` (e.g. ``{"train": {"max_steps": 20}}``)."""
    return sft.SftConfig.model_validate(merge_ds_config(DEFAULT_SFT, dict(override or {})))


def system_message(rubrics: RubricSet, context: str) -> str:
    """The critic's instructions: the rubrics of ``context`` and the JSON-only verdict."""
    applicable = rubrics.for_context(context)
    lines = ["You are a critic comparing two responses to the same prompt."]
    if applicable:
        lines.append("Judge them under these rubrics:")
        lines += [f"- {r.title}: {r.description}" for r in applicable]
    lines.append(f"Compare Response A and Response B and decide which one is better. Reply "
                 f"with JSON only: {VERDICTS['A']} or {VERDICTS['B']}.")
    return "\n".join(lines)


def user_message(prompt: str, first: str, second: str, config: CriticModelConfig) -> str:
    """The comparison: the prompt and both responses, each clipped to the configured length."""
    return (f"Prompt:\n{clip(prompt, config.max_prompt_chars)}\n\n"
            f"[Response A]\n{clip(first, config.max_response_chars)}\n\n"
            f"[Response B]\n{clip(second, config.max_response_chars)}")


def comparison(query: PairQuery, rubrics: RubricSet, config: CriticModelConfig,
               verdict: str | None = None) -> list[dict[str, str]]:
    """The chat of one query: system and user turns, plus the verdict turn when given."""
    chat = [{"role": "system", "content": system_message(rubrics, query.context)},
            {"role": "user", "content": user_message(query.prompt, query.first, query.second,
                                                     config)}]
    if verdict is not None:
        chat.append({"role": "assistant", "content": VERDICTS[verdict]})
    return chat


def _validation_ids(pairs: Sequence[PreferencePair]) -> set[str]:
    """~10 % of the pair ids (at least one from 10 pairs on), chosen by a hash of the id."""
    if len(pairs) < MIN_PAIRS_FOR_VALIDATION:
        return set()
    count = max(1, round(VALIDATION_SHARE * len(pairs)))
    ranked = sorted(pairs, key=lambda p: hashlib.sha1(p.pair_id.encode()).hexdigest())
    return {p.pair_id for p in ranked[:count]}


def verdict_frame(pairs: Sequence[PreferencePair], rubrics: RubricSet,
                  config: CriticModelConfig) -> pl.DataFrame:
    """The SFT examples of ``pairs``: each pair twice, chosen as A (target "A") and as B
    (target "B"), in the columns ``sft.prepare_run`` reads. ``messages`` holds the chat as
    JSON text, the form of ``sft_dataset`` (a polars list-of-structs column would iterate as
    Series); ``tools`` is null."""
    held = _validation_ids(pairs)
    rows = []
    for pair in pairs:
        split = "validation" if pair.pair_id in held else "train"
        orders = (("AB", pair.chosen, pair.rejected, "A"), ("BA", pair.rejected, pair.chosen, "B"))
        for tag, first, second, verdict in orders:
            query = PairQuery(pair.prompt, first, second, tuple(pair.rubrics), pair.domain)
            rows.append({"example_id": f"{pair.pair_id}:{tag}", "split": split,
                         "messages": json.dumps(comparison(query, rubrics, config, verdict),
                                                ensure_ascii=False),
                         "tools": None})
    return pl.DataFrame(rows, schema={"example_id": pl.String, "split": pl.String,
                                      "messages": pl.String, "tools": pl.String})


def _finite(value: Any) -> float | None:
    """``value`` as a float, None when absent or not finite (state is strict JSON)."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@register_critic("generative")
class GenerativeCritic:
    """The policy as a verdict-writing judge; ``fit`` fine-tunes it with the SFT trainer.

    ``policy`` is the folder whose weights judge: the policy for a fresh critic, the fitted
    weights for a loaded one. ``state`` may carry ``sft`` (overrides of ``DEFAULT_SFT``) and, in
    a saved critic, ``fitted``, ``trained_on`` and ``last_fit``."""

    kind = "generative"
    refits_from_scratch = False  # each fit fine-tunes the last fit's weights

    def __init__(self, policy: ModelFolder, config: CriticModelConfig, rubrics: RubricSet,
                 state: dict[str, Any]):
        self.policy, self.config, self.rubrics = policy, config, rubrics
        self.folder = policy  # the weights that judge now; the run's final folder after fit
        self.sft: dict[str, Any] = dict(state.get("sft") or {})
        sft_config(self.sft)  # a bad override fails here, not after the data is built
        self.fitted = bool(state.get("fitted", False))
        self.trained_on: dict[str, int] = dict(state.get("trained_on", {}))
        self.last_fit: dict[str, Any] = dict(state.get("last_fit", {}))
        self._model = self._tokenizer = None
        self._device = "cpu"

    # ------------------------------------------------------------------------- model
    def _load(self) -> None:
        if self._model is not None:
            return
        self._model, self._tokenizer, self._device = load_for_inference(self.folder, self.config)
        log.info("generative critic: %s in %s (%s)", self.folder.path,
                 str(self._model.dtype).removeprefix("torch."), precision.describe(self._device))

    def verdict_position(self, query: PairQuery) -> tuple[list[int], int, int]:
        """The prefix ids the verdict token follows and the token ids of verdict A and B."""
        self._load()
        a, b = (list(self._tokenizer.apply_chat_template(
            comparison(query, self.rubrics, self.config, v), tokenize=True, return_dict=False))
            for v in ("A", "B"))
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        if at is None or at == 0:
            raise ValueError("the chat template renders verdicts A and B identically (or from "
                             "the first token on): no verdict token to read")
        return a[:at], a[at], b[at]

    @torch.no_grad()
    def _p_first(self, items: list[tuple[list[int], int, int]]) -> list[float]:
        """P(verdict A) of each (prefix, token A, token B), one forward pass per batch."""
        pad = self._tokenizer.pad_token_id
        pad = pad if pad is not None else (self._tokenizer.eos_token_id or 0)
        keep_logits = "logits_to_keep" in inspect.signature(self._model.forward).parameters
        out = [0.5] * len(items)
        order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
        for at in range(0, len(order), self.config.batch_size):
            rows = order[at:at + self.config.batch_size]
            width = max(len(items[i][0]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(rows):
                prefix = items[i][0]
                ids[row, :len(prefix)] = torch.tensor(prefix)
                mask[row, :len(prefix)] = 1
            last = mask.sum(1) - 1
            inputs = {"input_ids": ids.to(self._device), "attention_mask": mask.to(self._device)}
            if keep_logits:  # the head only at each row's last real position
                logits = self._model(**inputs, logits_to_keep=last[:, None].to(self._device))
                logits = logits.logits[:, 0]
            else:
                logits = self._model(**inputs).logits[torch.arange(len(rows)), last.to(
                    self._device)]
            logits = logits.float().cpu()
            for row, i in enumerate(rows):
                pair = logits[row, [items[i][1], items[i][2]]]
                out[i] = float(torch.softmax(pair, 0)[0])
        return out

    # ------------------------------------------------------------------------- judge / fit
    def judge(self, queries: list[PairQuery]) -> list[Judgement]:
        if not queries:
            return []
        rules = [rule_verdict(q, self.rubrics) for q in queries]
        asked = [i for i, (decided, _) in enumerate(rules)
                 if not (self.config.enforce_rules and decided is not None)]
        p = dict(zip(asked, self._p_first([self.verdict_position(queries[i]) for i in asked])
                     if asked else []))
        state = "fitted" if self.fitted else "unfitted policy"
        out = []
        for i, (decided, per_rubric) in enumerate(rules):
            if i not in p:
                out.append(Judgement(decided, per_rubric, "a mandatory prescriptive rule decided"))
            else:
                out.append(Judgement(p[i], per_rubric,
                                     f"verdict token ({state}): P(A) = {p[i]:.2f}"))
        return out

    def fit(self, pairs: Sequence[PreferencePair]) -> dict[str, Any]:
        """Fine-tune the current weights to write the verdict of ``pairs`` (both orders each)
        with the SFT trainer; the critic then judges with the run's ``final`` weights. Every
        pair given is used (keep held-out pairs out); ``runs_dir`` and the DeepSpeed JSON are
        read relative to the working directory, the project root in a Kedro run."""
        if not pairs:
            raise ValueError("the critic needs at least one preference pair to fit")
        frame = verdict_frame(pairs, self.rubrics, self.config)
        config = sft_config(self.sft)
        prepared = sft.prepare_run(frame, self.folder, config, root=".")
        result = sft.train(prepared, config)
        final = ModelFolder(prepared.run_dir / "final")
        if not final.metadata().get("weights_digest"):  # a later fit from here gets a fresh run
            meta = {**final.metadata(), "weights_digest": final.files_digest(),
                    "critic_fit_from": str(self.folder.path)}
            (final.path / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True)
                                                    + "\n")
        self.folder, self.fitted = final, True
        self._model = self._tokenizer = None  # reloaded from the fitted weights when judging
        losses = [row["loss"] for row in result["metrics"] if "loss" in row]
        train_pairs = frame.filter(pl.col("split") == "train").height // 2
        self.trained_on = {"pairs": self.trained_on.get("pairs", 0) + train_pairs,
                           "examples": self.trained_on.get("examples", 0) + 2 * train_pairs}
        self.last_fit = {
            "pairs": len(pairs), "train_pairs": train_pairs,
            "validation_pairs": len(pairs) - train_pairs, "examples": 2 * train_pairs,
            "steps": int(result.get("steps", len(losses))),
            "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None,
            "final_eval_loss": _finite(result.get("final_eval_loss")),
            "run_dir": str(prepared.run_dir), "reused": bool(result.get("reused", False)),
        }
        log.info("generative critic: fitted on %d pairs in %d steps, loss %s -> %s (%s)",
                 train_pairs, self.last_fit["steps"], self.last_fit["first_loss"],
                 self.last_fit["final_loss"], prepared.run_dir)
        return dict(self.last_fit)

    def save(self, path: str | Path) -> ModelFolder:
        """The current weights (fitted or the policy's) plus the state: one model folder."""
        return save_with_state(self.folder, path, self.state())

    def state(self) -> dict[str, Any]:
        """What ``load_critic`` needs besides the weights (JSON-serialisable)."""
        return {"config": self.config.model_dump(mode="json"), "fitted": self.fitted,
                "sft": self.sft, "trained_on": self.trained_on, "last_fit": self.last_fit}
