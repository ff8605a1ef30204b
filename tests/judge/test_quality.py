"""Judge quality: ground truth, precision/recall, agreement — and the rule judge's targets
measured on real offline trajectories with the default imperfection rates."""

from pathlib import Path

import polars as pl
import pytest

from kimi_pipeline.agents.bundles import AgentConfig, sample_agents
from kimi_pipeline.agents.tasks import TaskConfig, write_all_tasks
from kimi_pipeline.agents.episode import EpisodeConfig
from kimi_pipeline.agents.rollout import RolloutConfig, run_shards
from kimi_pipeline.judge.format_checks import check_format
from kimi_pipeline.judge.quality import ground_truth, judge_agreement, judge_quality
from kimi_pipeline.judge.llm_judge import CriterionVerdict
from kimi_pipeline.judge.rubric import RuleJudge, Verdict, make_judge
from kimi_pipeline.llm.base import make_backend, OfflineBackendConfig
from kimi_pipeline.records import Task, Trajectory, from_frame, to_frame
from tests.agents.test_bundles import sample_tools
from tests.judge.test_rubric import ORDERS, cancel_dialogue

OFFLINE = OfflineBackendConfig()


@pytest.fixture(scope="session")
def offline_trajectories(tmp_path_factory) -> list[Trajectory]:
    """~600 episodes of the offline agent with the default imperfection and fault rates."""
    tools, backend = sample_tools(), make_backend(OFFLINE)
    agents, _ = sample_agents(tools, 30, backend, AgentConfig(), seed=3)
    tasks, _ = write_all_tasks(agents, tools, backend, TaskConfig(tasks_per_agent=20), seed=3)
    paths = run_shards(
        to_frame(tasks, Task),
        {a.agent_id: a for a in agents},
        lambda a: [t for t in tools if t.tool_id in a.tool_ids],
        Path(tmp_path_factory.mktemp("shards")),
        RolloutConfig(shard_size=1000, workers=1),
        EpisodeConfig(),
        OFFLINE,
        OFFLINE,
    )
    trajectories, bad = from_frame(pl.concat([pl.read_parquet(p) for p in paths]), Trajectory, "t")
    assert not bad and len(trajectories) >= 550
    return trajectories


def test_rule_judge_meets_its_targets_on_offline_trajectories(offline_trajectories):
    verdicts = RuleJudge().judge_many(offline_trajectories)
    quality = judge_quality(offline_trajectories, verdicts)
    assert quality["precision"] >= 0.98, quality["false_positives"]
    assert quality["recall"] >= 0.95, quality["false_negatives"]
    assert quality["clean_pass_rate"] >= 0.95
    flaws = quality["per_imperfection"]
    assert sum(c["count"] for k, c in flaws.items() if k != "none") >= 50  # rates really injected
    for breaking in ("give_up", "hallucinated_success", "missing_argument"):
        assert flaws.get(breaking, {"passed": 0})["passed"] == 0


def test_offline_llm_judge_agrees_with_the_rule_judge(offline_trajectories):
    sample = offline_trajectories[:200]
    rule = RuleJudge().judge_many(sample)
    llm = make_judge({"kind": "llm", "backend": OFFLINE.model_dump(), "repeats": 2}).judge_many(
        sample
    )
    agreement = judge_agreement(rule, llm)
    assert agreement["agreement"] == 1.0 and agreement["kappa"] == 1.0
    assert all(c["agreement"] == 1.0 for c in agreement["per_criterion"].values())


def test_kept_offline_trajectories_are_mostly_well_formed(offline_trajectories):
    verdicts = RuleJudge().judge_many(offline_trajectories)
    kept = [t for t, v in zip(offline_trajectories, verdicts) if v.passed]
    malformed = [t.trajectory_id for t in kept if check_format(t)]
    assert len(malformed) <= 0.1 * len(kept), malformed[:5]


def test_ground_truth_follows_the_generator_records():
    assert ground_truth(cancel_dialogue()) == (True, "succeeded")
    assert ground_truth(cancel_dialogue(end="agent_gave_up")) == (
        False,
        "dialogue ended 'agent_gave_up'",
    )
    assert ground_truth(cancel_dialogue(imperfections=["hallucinated_success"])) == (
        False,
        "breaking imperfection hallucinated_success",
    )
    assert ground_truth(cancel_dialogue(final_state=ORDERS)) == (False, "gold state not reached")
    assert ground_truth(cancel_dialogue(answer="It is now cancelled.")) == (
        False,
        "gold facts not said",
    )
    # a value imperfection breaks the task only when the wrong value reached a gold call
    assert ground_truth(cancel_dialogue(imperfections=["wrong_argument"]))[0]
    assert ground_truth(cancel_dialogue(order_id="ORD-2", imperfections=["wrong_argument"])) == (
        False,
        "a wrong value reached a gold call",
    )


def verdict(passed, *criteria):
    return Verdict(
        passed, 1.0 if passed else 0.0, [CriterionVerdict(n, ok, "") for n, ok in criteria], "test"
    )


def test_judge_quality_counts_the_confusion_matrix():
    trajectories = [
        cancel_dialogue(),
        cancel_dialogue(),
        cancel_dialogue(end="agent_gave_up"),
        cancel_dialogue(imperfections=["give_up"], end="agent_gave_up"),
    ]
    verdicts = [verdict(True), verdict(False, ("outcome", False)), verdict(True), verdict(False)]
    quality = judge_quality(trajectories, verdicts)
    assert quality["confusion"] == {
        "true_positive": 1,
        "false_positive": 1,
        "false_negative": 1,
        "true_negative": 1,
    }
    assert quality["precision"] == 0.5 and quality["recall"] == 0.5
    assert quality["per_imperfection"]["give_up"] == {
        "count": 1,
        "passed": 0,
        "truly_succeeded": 0,
        "pass_rate": 0.0,
    }
    assert quality["false_negatives"][0]["failed"] == ["outcome"]
    assert quality["false_positives"][0]["truth"] == "dialogue ended 'agent_gave_up'"
    with pytest.raises(ValueError, match="verdicts"):
        judge_quality(trajectories, verdicts[:2])


def test_judge_agreement_rate_and_kappa():
    a = [verdict(x, ("outcome", x)) for x in (True, True, False, False)]
    same = judge_agreement(a, a)
    assert same["agreement"] == 1.0 and same["kappa"] == 1.0
    b = [verdict(x, ("outcome", x)) for x in (True, False, True, False)]
    half = judge_agreement(a, b)
    assert half["agreement"] == 0.5 and half["kappa"] == 0.0
    assert half["per_criterion"]["outcome"]["kappa"] == 0.0
    flipped = judge_agreement(a, [verdict(not v.passed) for v in a])
    assert flipped["kappa"] == -1.0 and flipped["per_criterion"] == {}
