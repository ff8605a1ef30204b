"""The critic model: the policy itself turned into a judge of pairs of its own answers.

Kinds plug in by name (``@register_critic``); each is a ``PairJudge`` (``critic/pairwise.py``)
that can be fitted on ``PreferencePair`` rows and saved as a model folder (the policy's weights,
tokenizer and, in ``kimi_metadata.json``, everything the critic learned):

- ``bradley_terry`` (default): a Bradley–Terry preference head on the policy's backbone. Each
  response is read once by the frozen policy (prompt as the user turn, the response as the
  assistant turn); its hidden states in a band of middle layers (``feature_layers``) are
  averaged over the response tokens and over the band. One linear head scores a response;
  P(first better) is the logistic of the score difference, fitted by L2-regularised logistic
  regression on symmetrised pairs (both orders, so the head cannot learn a position and
  contradicts itself on no pair), each source of pairs with its configured weight. One more
  head per rubric, fitted on the pairs that concern that rubric, gives the per-rubric verdicts.
  Once verified pairs exist, the overall head learns from them and the mandatory-rule pairs
  (``preference_sources``); the synthetic twins teach the core rubrics' heads and the critic
  that comes before any rollout. Measured on SmolLM2-135M (sft_model, fp32) on two gym draws
  (393 verifier pairs of 40 tasks, 404 of 42), cross-validated by task: 81 and 75 % agreement
  with the verifiers, where picking the shorter answer scores 54 and 48 %. Fitting takes
  seconds once the features are read; a saved critic keeps the features it read
  (``critic_features.npz``), so RL's refreshes refit on the critic stage's pairs without
  reading them again.
- ``generative`` (``critic/generative.py``, K2's form): the policy fine-tuned by the SFT trainer
  to answer ``{"better": "A"}``; P(first better) is read from the logits of the verdict token.

Mandatory prescriptive rubrics (no initial praise, no explicit justification) are decided in
code by their rules when exactly one side breaks one (``enforce_rules``): a rule that can be
checked exactly is not left to a 135M model. The report measures the learned heads on the
rule pairs with the rules switched off, so it shows what the model itself learned.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sklearn.linear_model import LogisticRegression

from kimi_pipeline import precision
from kimi_pipeline.critic.pairwise import Judgement, PairQuery
from kimi_pipeline.critic.rubrics import RubricSet
from kimi_pipeline.critic.rules import get_rule
from kimi_pipeline.records import PreferencePair
from kimi_pipeline.registry import registrar
from kimi_pipeline.model_folder import METADATA_FILE, ModelFolder

log = logging.getLogger(__name__)

PREFERENCE = "preference"  # the overall head's name; the others are rubric names
FEATURES_FILE = "critic_features.npz"  # the features a saved critic has read (see save)


class CriticModelConfig(BaseModel):
    """How the critic is built from the policy (``critic.model`` in ``parameters_critic.yml``)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field("bradley_terry", description="Registered critic kind: 'bradley_terry' "
                      "(preference head on the frozen policy) or 'generative' (K2's verdict-"
                      "writing critic, fine-tuned by the SFT trainer).")
    feature_layers: tuple[float, float] = Field(
        (0.3, 0.5), description="bradley_terry: the band of hidden layers whose response-mean "
        "states are averaged into the features, as fractions of the depth (both ends included; "
        "(0.5, 0.5): the middle layer alone; (1.0, 1.0): the last). Measured on SmolLM2-135M "
        "(sft_model; verifier pairs of two gym draws, 393 of 40 tasks and 404 of 42, "
        "cross-validated by task, l2 400): layers 9-15 of 30 (0.3, 0.5) 81 / 76 %; layer 9 "
        "alone 75 / 70 %, layer 12 79 / 74 %, layer 15 79 / 71 %, the last 78 / 65 %. The best "
        "single layer moves from draw to draw; a band of them does not depend on that choice.")
    l2: float = Field(400.0, gt=0.0, description="bradley_terry: L2 strength of the heads "
                      "(sklearn's C = 1/l2; pair weights average 1): a few hundred pairs and "
                      "576 features need a strong prior. Measured as for feature_layers, layers "
                      "9-15: l2 100 81 / 73 %, 400 81 / 76 %, 1000 82 / 74 %, 3000 79 / 72 %; "
                      "the earlier default, layer 9 at l2 20, 70 / 67 %.")
    min_pairs_per_head: int = Field(
        4, ge=1, description="A rubric head is fitted only with at least this many pairs.")
    max_prompt_chars: int = Field(1500, ge=100, description="Prompt text kept per comparison.")
    max_response_chars: int = Field(1200, ge=100, description="Response text kept per side.")
    batch_size: int = Field(8, ge=1, description="Sequences per forward pass.")
    dtype: str = Field("auto", description="Precision of the backbone: auto (bf16 only where "
                       "the hardware has fast bf16), float32, bfloat16.")
    device: str = Field("auto", description="auto (cuda when present), cpu or cuda.")
    source_weights: dict[str, float] = Field(
        default_factory=lambda: {"verifier": 1.0, "rule": 0.2, "synthetic": 0.2},
        description="bradley_terry: total weight of each source of pairs in each head's fit (each "
        "source's pairs share it equally, however many there are; unlisted sources weigh 1). The "
        "verifiable pairs carry the truth the critic is refined on; hundreds of cheap bootstrap "
        "twins must not drown them.")
    preference_sources: list[str] = Field(
        default_factory=lambda: ["verifier", "rule"], description="bradley_terry: when a fit's "
        "pairs include verified ones, the overall preference head is fitted on the pairs of "
        "these sources alone (the rubric heads still learn from every pair of their rubric); "
        "before any verified pair (the bootstrap critic), on every pair. Verified pairs carry "
        "the truth and the mandatory rules are truth too; the synthetic twins ('truncated', "
        "'off topic') teach the head to prefer the longer, fuller answer, which ranks a harmful "
        "compliance above a short refusal. Measured on SmolLM2-135M (178 verified pairs of 20 "
        "gym tasks, leave-one-task-out; 24 held-out rule pairs, rules not enforced): verifier + "
        "rule 77 % / 100 %, verifier alone 85 % / 29 %, every source 70 % / 100 %. [] fits it "
        "on every pair.")
    sft: dict[str, Any] = Field(
        default_factory=dict, description="generative: overrides of the SFT trainer's config "
        "(training/sft.py SftConfig) used to fit the critic, e.g. {train: {steps: 200}}.")
    enforce_rules: bool = Field(
        True, description="Mandatory prescriptive rubrics decide a pair in code when exactly one "
        "side breaks their rule; false leaves every decision to the learned critic.")

    @field_validator("feature_layers")
    @classmethod
    def _band(cls, band: tuple[float, float]) -> tuple[float, float]:
        if not (0.0 < band[0] <= band[1] <= 1.0):
            raise ValueError(f"feature_layers {list(band)}: two fractions of the depth, "
                             "0 < first <= last <= 1")
        return band


class Critic(Protocol):
    """A fitted-or-not pairwise critic (a ``PairJudge`` that learns and saves itself)."""

    kind: str

    def judge(self, queries: list[PairQuery]) -> list[Judgement]: ...

    def fit(self, pairs: Sequence[PreferencePair]) -> dict[str, Any]: ...

    # whether ``fit`` starts from the untrained critic (so it can be cross-validated) or
    # continues from the last fit (a fine-tuned model)
    refits_from_scratch: bool

    def save(self, path: str | Path) -> ModelFolder: ...


CriticFactory = Callable[[ModelFolder, CriticModelConfig, RubricSet, dict[str, Any]], Critic]
CRITICS: dict[str, CriticFactory] = {}
register_critic = registrar(CRITICS)  # a critic class under its ``kind``


# kinds defined in other modules: imported on first use (they import this one)
CRITIC_MODULES = {"generative": "kimi_pipeline.critic.generative"}


def _factory(kind: str) -> CriticFactory:
    if kind not in CRITICS and kind in CRITIC_MODULES:
        importlib.import_module(CRITIC_MODULES[kind])
    if kind not in CRITICS:
        known = sorted({*CRITICS, *CRITIC_MODULES})
        raise ValueError(f"unknown critic kind {kind!r}; known: {known}")
    return CRITICS[kind]


def make_critic(policy: ModelFolder, config: CriticModelConfig, rubrics: RubricSet) -> Critic:
    """A fresh (unfitted) critic of ``config.kind`` on the policy's weights."""
    return _factory(config.kind)(policy, config, rubrics, {"sft": config.sft})


def load_critic(folder: ModelFolder, rubrics: RubricSet,
                state: dict[str, Any] | None = None) -> Critic:
    """The critic saved in ``folder`` (its ``kimi_metadata.json`` names the kind and state), or
    the one described by ``state`` (``Critic.state()``, e.g. refreshed during RL) on its weights."""
    state = state or folder.metadata().get("critic")
    if not state:
        raise ValueError(f"{folder.path} holds no critic (kimi_metadata.json has no 'critic')")
    saved = dict(state["config"])
    if "feature_depth" in saved:  # critics saved before the band of layers: one layer
        saved["feature_layers"] = (saved["feature_depth"],) * 2
        del saved["feature_depth"]
    config = CriticModelConfig.model_validate(saved)
    return _factory(config.kind)(folder, config, rubrics, state)


def inference_device(config: CriticModelConfig) -> tuple[str, torch.dtype]:
    """(device, dtype) the backbone runs at: the configured ones, ``auto`` resolved."""
    device = ("cuda" if torch.cuda.is_available() else "cpu") \
        if config.device == "auto" else config.device
    return device, precision.resolve(config.dtype, device)


def load_for_inference(folder: ModelFolder, config: CriticModelConfig):
    """(model in eval mode, tokenizer, device) at the configured device and precision."""
    device, dtype = inference_device(config)
    model = folder.load_model(dtype=dtype)
    return model.to(device).eval(), folder.load_tokenizer(), device


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[:limit] + " …"


def rule_verdict(query: PairQuery, rubrics: RubricSet) -> tuple[float | None, dict[str, float]]:
    """P(first better) decided by the mandatory rules (None when they do not decide) and the
    per-rubric verdict of every rule rubric (1 first, 0 second, 0.5 both or neither broke it)."""
    verdicts, decided = {}, None
    for rubric in rubrics.with_rules(query.context or None):
        rule = get_rule(rubric.rule)
        first = rule(query.prompt, query.first).violated
        second = rule(query.prompt, query.second).violated
        verdicts[rubric.name] = 0.5 if first == second else float(second)
        if rubric.mandatory and first != second and decided is None:
            decided = float(second)
    return decided, verdicts


def source_weighted(sources: Sequence[str], weights: dict[str, float]) -> np.ndarray:
    """Pair weights giving each source its configured total weight, split evenly over its pairs
    (mean weight 1 when every source weighs 1)."""
    counts = {s: sources.count(s) for s in set(sources)}
    total = sum(weights.get(s, 1.0) for s in counts) or 1.0
    return np.array([len(sources) * weights.get(s, 1.0) / (total * counts[s]) for s in sources])


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


@register_critic("bradley_terry")
class BradleyTerryCritic:
    """Linear Bradley–Terry heads on mean-pooled hidden states of the frozen policy."""

    kind = "bradley_terry"
    refits_from_scratch = True

    def __init__(self, policy: ModelFolder, config: CriticModelConfig, rubrics: RubricSet,
                 state: dict[str, Any]):
        self.policy, self.config, self.rubrics = policy, config, rubrics
        self.heads: dict[str, np.ndarray] = {
            k: np.asarray(v, dtype=np.float64) for k, v in state.get("heads", {}).items()}
        scale = state.get("scale")
        self.scale = np.asarray(scale, dtype=np.float64) if scale is not None else None
        self.trained_on: dict[str, int] = dict(state.get("trained_on", {}))
        self._model = self._tokenizer = None
        self._cache: dict[str, np.ndarray] = self._saved_features()

    # ------------------------------------------------------------------------- features
    def _load(self) -> None:
        if self._model is not None:
            return
        self._model, self._tokenizer, self._device = load_for_inference(self.policy, self.config)
        first, last = self._layers()
        log.info("critic: %s features from layers %d-%d of %d in %s (%s)", self.policy.path,
                 first, last, self._model.config.num_hidden_layers,
                 str(self._model.dtype).removeprefix("torch."), precision.describe(self._device))

    def _layers(self) -> tuple[int, int]:
        """First and last hidden layer of the feature band (1-based, both included)."""
        layers = self._model.config.num_hidden_layers
        first, last = self.config.feature_layers
        return max(1, round(first * layers)), max(1, round(last * layers))

    def _encode(self, prompt: str, response: str) -> tuple[list[int], int]:
        """Token ids of the (prompt, response) chat and where the response starts."""
        user = [{"role": "user", "content": clip(prompt, self.config.max_prompt_chars)}]
        full = user + [{"role": "assistant",
                        "content": clip(response, self.config.max_response_chars)}]
        ids = self._tokenizer.apply_chat_template(full, tokenize=True, return_dict=False)
        start = len(self._tokenizer.apply_chat_template(
            user, tokenize=True, add_generation_prompt=True, return_dict=False))
        return list(ids), min(start, len(ids) - 1)

    @staticmethod
    def _key(prompt: str, response: str) -> str:
        return hashlib.sha1(f"{prompt}\x00{response}".encode()).hexdigest()

    def _feature_identity(self) -> str:
        """What a feature depends on besides the weights and the text: which layers, how much
        text, and the precision and device kind the backbone reads it at."""
        device, dtype = inference_device(self.config)
        return json.dumps({"layers": list(self.config.feature_layers),
                           "prompt_chars": self.config.max_prompt_chars,
                           "response_chars": self.config.max_response_chars,
                           "dtype": str(dtype), "device": torch.device(device).type})

    def _saved_features(self) -> dict[str, np.ndarray]:
        """Features the critic stage read (``save``), when they were read as this critic
        would read them: RL's first refresh refits on the stage's pairs without the ~2.5 min
        of forward passes (measured on SmolLM2-135M, 2 cores, fp32)."""
        path = self.policy.path / FEATURES_FILE
        if not path.is_file():
            return {}
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["identity"]) != self._feature_identity():
                log.info("critic: %s was read at other settings; features are read again", path)
                return {}
            return {key: row.astype(np.float64)
                    for key, row in zip(saved["keys"].tolist(), saved["features"], strict=True)}

    def features(self, items: Sequence[tuple[str, str]]) -> np.ndarray:
        """One feature row per (prompt, response): the mean hidden state of the response."""
        todo = list(dict.fromkeys(self._key(p, r) for p, r in items if
                                  self._key(p, r) not in self._cache))
        if todo:
            self._load()
            by_key = {self._key(p, r): (p, r) for p, r in items}
            encoded = {k: self._encode(*by_key[k]) for k in todo}
            todo.sort(key=lambda k: len(encoded[k][0]))  # similar lengths share a batch
            for at in range(0, len(todo), self.config.batch_size):
                self._forward([(k, *encoded[k]) for k in todo[at:at + self.config.batch_size]])
        return np.stack([self._cache[self._key(p, r)] for p, r in items])

    @torch.no_grad()
    def _forward(self, batch: list[tuple[str, list[int], int]]) -> None:
        width = max(len(ids) for _, ids, _ in batch)
        pad = self._tokenizer.pad_token_id or 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (_, tokens, _) in enumerate(batch):
            ids[row, :len(tokens)] = torch.tensor(tokens)
            mask[row, :len(tokens)] = 1
        out = self._model(input_ids=ids.to(self._device), attention_mask=mask.to(self._device),
                          output_hidden_states=True)
        first, last = self._layers()
        hidden = torch.stack(out.hidden_states[first:last + 1]).float().mean(0).cpu()
        for row, (key, tokens, start) in enumerate(batch):
            self._cache[key] = hidden[row, start:len(tokens)].mean(0).numpy().astype(np.float64)

    # ------------------------------------------------------------------------- fit / judge
    def fit(self, pairs: Sequence[PreferencePair]) -> dict[str, Any]:
        """Fit the overall head on every pair and one head per rubric with enough pairs."""
        if not pairs:
            raise ValueError("the critic needs at least one preference pair to fit")
        chosen = self.features([(p.prompt, p.chosen) for p in pairs])
        rejected = self.features([(p.prompt, p.rejected) for p in pairs])
        diff = chosen - rejected
        groups = {PREFERENCE: self._preference_rows(pairs)}
        # features scaled by the overall head's own pairs: the synthetic twins (truncated, off
        # topic) differ far more than two answers to one gym task and would shrink the rest
        self.scale = np.abs(diff[groups[PREFERENCE]]).mean(0) + 1e-6
        for name in self.rubrics.names:
            rows = np.array([i for i, p in enumerate(pairs) if name in p.rubrics])
            if len(rows) >= self.config.min_pairs_per_head:
                groups[name] = rows
        sources = [p.source for p in pairs]
        self.heads = {}
        for name, rows in groups.items():  # each head weighs its own pairs' sources
            weight = source_weighted([sources[i] for i in rows], self.config.source_weights)
            self.heads[name] = self._fit_head(diff[rows] / self.scale, weight)
        self.trained_on = {name: int(len(rows)) for name, rows in groups.items()}
        return {"pairs": len(pairs), "heads": dict(self.trained_on)}

    def _preference_rows(self, pairs: Sequence[PreferencePair]) -> np.ndarray:
        """The pairs the overall head learns from (see ``preference_sources``)."""
        preferred = set(self.config.preference_sources)
        if not preferred or not any(p.source == "verifier" for p in pairs):
            return np.arange(len(pairs))
        return np.array([i for i, p in enumerate(pairs) if p.source in preferred], dtype=int)

    def _fit_head(self, diff: np.ndarray, weight: np.ndarray) -> np.ndarray:
        x = np.concatenate([diff, -diff])
        y = np.concatenate([np.ones(len(diff)), np.zeros(len(diff))])
        head = LogisticRegression(C=1.0 / self.config.l2, fit_intercept=False, max_iter=2000)
        return head.fit(x, y, sample_weight=np.concatenate([weight, weight])).coef_[0]

    def judge(self, queries: list[PairQuery]) -> list[Judgement]:
        if not queries:
            return []
        first = self.features([(q.prompt, q.first) for q in queries])
        second = self.features([(q.prompt, q.second) for q in queries])
        return [self._judgement(q, a, b) for q, a, b in zip(queries, first, second)]

    def _judgement(self, query: PairQuery, first: np.ndarray, second: np.ndarray) -> Judgement:
        decided, per_rubric = rule_verdict(query, self.rubrics)
        if not self.heads:
            return Judgement(None, per_rubric, "critic not fitted yet: no preference")
        diff = (first - second) / self.scale
        per_rubric.update({name: _sigmoid(float(diff @ w)) for name, w in self.heads.items()
                           if name != PREFERENCE and name not in per_rubric})
        p_first = _sigmoid(float(diff @ self.heads[PREFERENCE]))
        if self.config.enforce_rules and decided is not None:
            return Judgement(decided, per_rubric, "a mandatory prescriptive rule decided")
        return Judgement(p_first, per_rubric, f"preference head: P(first) = {p_first:.2f}")

    def save(self, path: str | Path) -> ModelFolder:
        """The policy's folder, byte for byte, plus the heads: one loadable model folder; and
        the features read so far (``FEATURES_FILE``, float32 as computed), so a refit on the
        same pairs (RL's critic refresh) reads none of them again."""
        folder = save_with_state(self.policy, path, self.state())
        if self._cache:
            keys = sorted(self._cache)
            np.savez(folder.path / FEATURES_FILE, keys=np.array(keys),
                     features=np.stack([self._cache[k] for k in keys]).astype(np.float32),
                     identity=np.array(self._feature_identity()))
        return folder

    def state(self) -> dict[str, Any]:
        """What ``load_critic`` needs besides the weights (JSON-serialisable)."""
        return {"config": self.config.model_dump(mode="json"),
                "heads": {k: v.tolist() for k, v in self.heads.items()},
                "scale": None if self.scale is None else self.scale.tolist(),
                "trained_on": self.trained_on}


def save_with_state(policy: ModelFolder, path: str | Path, state: dict[str, Any]) -> ModelFolder:
    """Copy the policy's folder to ``path`` and record the critic ``state`` in its metadata."""
    path = Path(path)
    shutil.copytree(policy.path, path, dirs_exist_ok=True)
    metadata = {**policy.metadata(), "critic": state}
    (path / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return ModelFolder(path)
