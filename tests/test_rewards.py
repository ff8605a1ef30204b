"""The reward protocol: the verifier on real gym tasks, the rubric judge on trajectories, the
critic through a hand-written pair judge, and the registry's errors."""

import random

import pytest

from kimi_pipeline.critic.pairwise import Judgement
from kimi_pipeline.gym.registry import Domain, Verification, get_domain
from kimi_pipeline.records import GymTask, Trajectory, to_frame
from kimi_pipeline.rewards import (
    _REWARDS,
    Reward,
    RewardGroup,
    RewardResult,
    make_reward,
    register_reward,
)
from tests.judge.test_rubric import cancel_dialogue


def math_task() -> GymTask:
    (task,) = get_domain("math").generate(random.Random(0), 1, 1)
    return task


def wrong(task: GymTask) -> str:
    return f"\\boxed{{{int(task.answer) + 1}}}"


# ----------------------------------------------------------------------------- registry


def test_every_source_builds_and_follows_the_protocol():
    for name, options in [("verifier", {}), ("rubric", {}), ("critic", {"judge": Longer()})]:
        reward = make_reward(name, **options)
        assert isinstance(reward, Reward) and reward.name == name


def test_unknown_reward_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown reward 'elo'; known: \[.*'critic'.*'verifier'"):
        make_reward("elo")


def test_a_registered_source_is_reachable_by_name():
    @register_reward("constant-test")
    class Constant:
        name = "constant-test"

        def __init__(self, value=0.25):
            self.value = value

        def score(self, groups):
            return [[RewardResult(self.value, "constant") for _ in g.candidates] for g in groups]

    try:
        reward = make_reward("constant-test", value=0.75)
        got = reward.score([RewardGroup("p", ["a", "b"])])
        assert got == [[RewardResult(0.75, "constant")] * 2]
    finally:
        _REWARDS.pop("constant-test", None)


# ----------------------------------------------------------------------------- verifier


def test_verifier_rewards_the_right_answer_of_a_real_math_task():
    task = math_task()
    right = f"The result is \\boxed{{{task.answer}}}."
    [[good, bad, empty]] = make_reward("verifier").score(
        [RewardGroup(task.prompt, [right, wrong(task), None], item=task)]
    )
    assert (good.score, bad.score, empty.score) == (1.0, 0.0, 0.0)
    assert "mismatch" in bad.reason and good.reason
    assert good.details["domain"] == "math" and good.details["task_id"] == task.task_id
    assert good.details["verification"]["gold"] == task.answer


def test_verifier_takes_task_rows_and_scores_unknown_domains_zero():
    task = math_task()
    lost = GymTask(task_id="t-x", domain="no-such-domain", prompt="?", answer="1")
    groups = [
        RewardGroup("?", ["\\boxed{1}"], item=lost),
        RewardGroup(task.prompt, [f"\\boxed{{{task.answer}}}"], item=task.model_dump()),
    ]
    [[unknown], [right]] = make_reward("verifier").score(groups)
    assert unknown.score == 0.0 and "unknown gym domain 'no-such-domain'" in unknown.reason
    assert right.score == 1.0
    with pytest.raises(TypeError, match="GymTask"):
        make_reward("verifier").score([RewardGroup("?", ["x"], item=None)])


class Lenient(Domain):
    """A configured copy of a domain: accepts everything, counts its batches."""

    def __init__(self):
        self.batches = []

    def generate(self, rng, n, difficulty):
        return []

    def verify(self, task, response):
        return Verification(1.0, "lenient")

    def verify_many(self, pairs, max_workers=None):
        self.batches.append(len(pairs))
        return super().verify_many(pairs, max_workers)


class Broken(Lenient):
    def verify(self, task, response):
        raise RuntimeError("sandbox down")


def test_verifier_uses_configured_domains_one_batch_per_domain():
    task, lenient = math_task(), Lenient()
    reward = make_reward("verifier", domains={"math": lenient})
    groups = [RewardGroup(task.prompt, [wrong(task), "x"], item=task)] * 2
    results = reward.score(groups)
    assert [[r.score for r in g] for g in results] == [[1.0, 1.0], [1.0, 1.0]]
    assert lenient.batches == [4]
    [[failed]] = make_reward("verifier", domains={"math": Broken()}).score(
        [RewardGroup(task.prompt, ["x"], item=task)]
    )
    assert failed.score == 0.0 and "verifier error: RuntimeError: sandbox down" in failed.reason


# ------------------------------------------------------------------------------- rubric


def test_rubric_reward_scores_trajectories_with_the_failed_criteria():
    good = cancel_dialogue()
    vague = cancel_dialogue(answer="Your order is now cancelled.")  # never says ORD-1
    [[ok, partial], [row]] = make_reward("rubric").score(
        [
            RewardGroup("cancel ORD-1", [good, vague]),
            RewardGroup("cancel ORD-1", list(to_frame([vague], Trajectory).iter_rows(named=True))),
        ]
    )
    assert ok.score == 1.0 and ok.reason == "every criterion passed" and ok.details["passed"]
    assert 0.0 < partial.score < 1.0 and not partial.details["passed"]
    assert partial.reason.startswith("failed: ") and "required_facts" in partial.reason
    assert partial.details["criteria"]["required_facts"] is False
    assert row == partial  # a frame row is judged like its record


def test_rubric_reward_takes_a_judge_config():
    reward = make_reward("rubric", judge={"criteria": ["state_predicates"]})
    [[result]] = reward.score([RewardGroup("cancel", [cancel_dialogue(answer="Done.")])])
    assert result.score == 1.0 and list(result.details["criteria"]) == ["state_predicates"]


# ------------------------------------------------------------------------------- critic


class Longer:
    """A pair judge preferring the longer text; records its batches."""

    def __init__(self):
        self.batches = []

    def judge(self, queries):
        self.batches.append(list(queries))
        out = []
        for q in queries:
            d = len(q.first) - len(q.second)
            out.append(Judgement(0.9 if d > 0 else 0.1 if d < 0 else 0.5, {}, "by length"))
        return out


class FirstShown:
    def judge(self, queries):
        return [Judgement(0.9, {}, "first") for _ in queries]


def test_critic_reward_scores_each_group_by_win_rate_in_one_judge_call():
    judge = Longer()
    reward = make_reward("critic", judge=judge, rubrics=["clarity"])
    groups = [
        RewardGroup("Write a haiku.", ["short", "a longer one", "mid-size"], context="creative"),
        RewardGroup("Say hi.", ["hi"]),
        RewardGroup("Advise me.", ["no", "yes, here is how"]),
    ]
    first, single, second = reward.score(groups)
    assert len(judge.batches) == 1 and len(judge.batches[0]) == 2 * (3 + 0 + 1)
    assert judge.batches[0][0].rubrics == ("clarity",) and judge.batches[0][0].context == "creative"
    assert [r.score for r in first] == [0.0, 1.0, 0.5]
    assert first[1].details == dict(method="win_rate", wins=2, losses=0, ties=0,
                                    contradictions=0, compared=2)
    assert "won 2, lost 0, tied 0 of 2" in first[1].reason
    assert single == [RewardResult(0.5, "no other candidate to compare", {"method": "win_rate"})]
    assert [r.score for r in second] == [0.0, 1.0]


def test_critic_reward_reports_contradictions_and_offers_bradley_terry():
    [results] = make_reward("critic", judge=FirstShown()).score(
        [RewardGroup("p", ["a", "bb", "ccc"])]
    )
    assert [r.score for r in results] == [0.5, 0.5, 0.5]
    assert all(r.details["contradictions"] == 2 for r in results)
    assert "2 ties from orders that disagreed" in results[0].reason
    [bt] = make_reward("critic", judge=Longer(), method="bradley_terry").score(
        [RewardGroup("p", ["a", "bbb", "cc"])]
    )
    assert bt[1].score > bt[2].score > bt[0].score and bt[0].details["method"] == "bradley_terry"


def test_critic_reward_refuses_bad_options():
    with pytest.raises(ValueError, match="unknown candidate scorer 'elo'"):
        make_reward("critic", judge=Longer(), method="elo")
    with pytest.raises(TypeError, match="PairJudge"):
        make_reward("critic", judge="a model name")
