"""Parameters of the ``rl`` stage (``parameters_rl.yml``), validated when the run starts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.agents.episode import EpisodeConfig
from kimi_pipeline.judge.rubric import JudgeConfig
from kimi_pipeline.llm.base import BackendConfig, HFBackendConfig, OfflineBackendConfig
from kimi_pipeline.rl.budget import BudgetConfig
from kimi_pipeline.rl.prompts import PoolConfig, SamplerConfig
from kimi_pipeline.rl.schedules import TemperatureSchedule
from kimi_pipeline.training.engine import EngineConfig
from kimi_pipeline.training.objectives import ObjectiveConfig
from kimi_pipeline.training.optim import OptimizerConfig


class PolicyTrainConfig(BaseModel):
    """How each iteration's rollouts update the policy."""

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(12, ge=1, description="RL iterations (sample → reward → update).")
    samples: int = Field(4, ge=2, description="K: samples per prompt (one group).")
    micro_batches: int = Field(
        4, ge=1, description="Micro-batches each update is split into (gradient accumulation); "
        "at most prompts_per_iteration × samples."
    )
    updates_per_iteration: int = Field(
        1, ge=1, description="Optimizer steps per iteration, each on a share of the rollouts "
        "(more than one makes the log-ratio to π_old, and so τ / the clip, matter)."
    )
    old_logprobs: Literal["trainer", "sampler"] = Field(
        "trainer", description="π_old of the loss: 'trainer' = the trained model's own "
        "log-probs before this iteration's first update (free with one update per iteration: "
        "the same forward, detached; otherwise one no-grad pass); 'sampler' = the log-probs "
        "the sampler recorded (no extra pass, but any sampler/trainer numeric mismatch enters "
        "the loss). Their gap is logged either way."
    )
    reset_optimizer: bool = Field(
        True, description="Clear the optimizer's moments before each iteration (k1.5 does)."
    )
    warmup_iterations: int = Field(1, ge=0, description="Linear LR warm-up, in updates.")
    max_grad_norm: float = Field(1.0, gt=0, description="Global gradient-norm clip.")
    trainable_layers: int | None = Field(
        None, ge=1, description="Train only the top N decoder blocks (as sft.train); null: all."
    )
    autocast: Literal["auto", "none", "bf16"] = Field(
        "auto", description="Forward precision outside DeepSpeed's bf16 mode (as sft.train): "
        "bf16 only where the hardware multiplies it natively."
    )
    checkpoint_every: int = Field(1, ge=1, description="Resumable checkpoint every N iterations.")
    keep_checkpoints: int = Field(
        2, ge=1, description="Newest checkpoints kept on disk while the run is unfinished (a "
        "finished run keeps final/ only: training/launch.py).")
    seed: int = Field(0, description="Seed of prompt draws, sampling and every RNG.")


class PtxConfig(BaseModel):
    """The auxiliary next-token loss on SFT data (against forgetting)."""

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(
        0.1, ge=0, description="Weight of the PTX loss in each update (0: off)."
    )
    rows_per_update: int = Field(
        2, ge=1, description="sft_dataset training examples per update (drawn by seed)."
    )
    seq_len: int = Field(768, ge=16, description="Tokens an example is cut to.")


class CriticUseConfig(BaseModel):
    """The critic reward of open prompts and its refresh during RL."""

    model_config = ConfigDict(extra="forbid")

    rubrics_file: str = Field(
        "conf/base/critic_rubrics.yml", description="The rubrics the critic judges under "
        "(critic/rubrics.py), relative to the project root."
    )
    method: str = Field("win_rate", description="Candidate scorer (critic.pairwise).")
    margin: float = Field(0.0, ge=0, description="|P(a) − 0.5| under this is a tie.")
    refresh_every: int = Field(
        4, ge=0, description="Refine the critic on this iteration's verifiable rollouts every "
        "N iterations (0: never), with critic.refine.refine_critic."
    )
    heldout_share: float = Field(
        0.3, ge=0, lt=1, description="Share of the refresh's tasks measured, not fitted."
    )


class RewardMixConfig(BaseModel):
    """Weights of the reward sources and the judges they use."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float] = Field(
        default_factory=lambda: {"verifier": 1.0, "critic": 1.0, "rubric": 1.0},
        description="Multiplier of each source's reward (the advantage is taken within a "
        "prompt's group, so a weight scales how hard that source pulls).",
    )
    judges: dict[str, BackendConfig] = Field(
        default_factory=dict, description="gym domain → the backend of its LLM judge (as "
        "gym.judges); a domain not listed uses its offline judge."
    )
    verify_workers: int = Field(2, ge=1, description="Code-sandbox processes.")


class EvaluationConfig(BaseModel):
    """The before/after measurement on held-out tasks."""

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(4, ge=1, description="Samples per held-out task per model.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature (the gym's).")
    max_new_tokens: int = Field(160, ge=1, description="Token budget per answer.")
    max_tasks: int | None = Field(None, ge=1, description="Cap on held-out tasks (quick runs).")
    backend: BackendConfig | None = Field(
        None, description="How the table is sampled (in the Kedro process, after training): "
        "an hf backend configuration, e.g. the gym's two single-thread processes; null uses "
        "rl.rollout, the settings of the training worker's sampler."
    )
    tool_tasks: bool = Field(
        True, description="Also play the SFT stage's held-out tool tasks as the agent with "
        "sft_model and rl_model, under the SFT evaluation's parameters (params:sft_evaluation, "
        "agents/evaluate.py), so the report shows whether RL on gym tasks kept tool use: rubric "
        "success, call validity. ~2.5 min per model with the default 24 greedy episodes on 2 "
        "CPU cores; false skips it."
    )


class EpisodesConfig(BaseModel):
    """Tool-use episodes of the ``rubric`` source (``rl/episodes.py``)."""

    model_config = ConfigDict(extra="forbid")

    episode: EpisodeConfig = Field(
        default_factory=lambda: EpisodeConfig(max_user_turns=3, max_agent_steps=6),
        description="Limits and faults of one episode (agents/episode.py).",
    )
    user_backend: BackendConfig = Field(
        default_factory=OfflineBackendConfig, description="The user simulator (offline by default)."
    )
    judge: JudgeConfig = Field(
        default_factory=JudgeConfig, description="The rubric judge scoring each episode."
    )
    episodes_in_flight: int = Field(32, ge=1, description="Episodes played concurrently.")


class RLConfig(BaseModel):
    """Parameters of the ``rl`` stage."""

    model_config = ConfigDict(extra="forbid")

    train: PolicyTrainConfig = Field(default_factory=PolicyTrainConfig, description="Updates.")
    objective: ObjectiveConfig = Field(
        default_factory=ObjectiveConfig, description="k1.5 (default), grpo (comparison)."
    )
    optimizer: OptimizerConfig = Field(
        default_factory=lambda: OptimizerConfig(name="adamw", lr=2e-6),
        description="Optimizer (training/optim.py); its moments are cleared each iteration by "
        "train.reset_optimizer.",
    )
    engine: EngineConfig = Field(default_factory=EngineConfig, description="DeepSpeed/launcher.")
    pool: PoolConfig = Field(default_factory=PoolConfig, description="The prompt pool.")
    sampler: SamplerConfig = Field(default_factory=SamplerConfig, description="Prompt draws.")
    temperature: TemperatureSchedule = Field(
        default_factory=TemperatureSchedule, description="Sampling temperature by iteration."
    )
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="Budget control.")
    ptx: PtxConfig = Field(default_factory=PtxConfig, description="PTX loss.")
    rewards: RewardMixConfig = Field(default_factory=RewardMixConfig, description="Sources.")
    critic: CriticUseConfig = Field(default_factory=CriticUseConfig, description="Critic.")
    episodes: EpisodesConfig = Field(
        default_factory=EpisodesConfig, description="Tool-use episodes (rubric rewards)."
    )
    rollout: BackendConfig = Field(
        default_factory=lambda: HFBackendConfig(max_batch_size=64),
        description="Sampling settings of the policy being trained (the hf backend serving "
        "the in-memory model: max_batch_size rows per decode step, cpu_threads).",
    )
    evaluation: EvaluationConfig = Field(
        default_factory=EvaluationConfig, description="Held-out before/after table."
    )
    attn_implementation: str = Field("sdpa", description="Attention kernel of the policy.")
    runs_dir: str = Field("data/06_models/rl_runs", description="Run folders.")
    resume: bool = Field(
        True, description="Continue a run with the same fingerprint from its newest checkpoint "
        "(and reuse a finished one); false starts over."
    )
    samples_logged: int = Field(4, ge=0, description="Completions logged per iteration.")
    progress: bool = Field(True, description="Progress bar.")
