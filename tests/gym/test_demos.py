"""Verified demonstrations for SFT: only responses the real verifiers accept, none on a task the
gym evaluates, at most ``keep_per_task`` distinct ones per task, in the SFT example format.

The policy is a plain function standing in for base_model: on the i-th math task it writes the
reference answer in i mod 4 of its 4 samples (twice the same text, then a differently worded
one) and a wrong answer in the rest, so which tasks yield a demonstration is known in advance.
"""

from __future__ import annotations

import json

from kimi_pipeline.gym.demos import AGENT_ID, DemoConfig, fresh_tasks, sample_demonstrations
from kimi_pipeline.gym.run import GymConfig, generate_tasks
from kimi_pipeline.records import SftExample, to_frame

K = 4
RIGHT = ["The answer is \\boxed{{{}}}", "The answer is \\boxed{{{}}}", "So: \\boxed{{{}}}"]


def demo_config(**overrides) -> DemoConfig:
    return DemoConfig.model_validate({
        "sampling": {"seed": 5, "domains": {"math": [6]}, "samples": K, "verify_batch": 4},
        **overrides,
    })


def policy_for(tasks):
    by_prompt = {t.prompt: (i, t) for i, t in enumerate(tasks)}

    def policy(prompts, k):
        out = []
        for messages in prompts:
            i, task = by_prompt[messages[-1]["content"]]
            out.append([RIGHT[s].format(task.answer) if s < i % K else "\\boxed{-12345}"
                        for s in range(k)])
        return out

    return policy


def test_only_verified_responses_become_demonstrations_in_the_sft_format():
    config = demo_config()
    tasks = generate_tasks(config.sampling)
    demos, report = sample_demonstrations(policy_for(tasks), config)

    solved = [t for i, t in enumerate(tasks) if i % K]  # tasks 1, 2, 3, 5 have a right answer
    assert [d.trajectory_id for d in demos] == [t.task_id for t in solved]
    assert report["demonstrations"] == len(solved) and report["tasks"] == len(tasks)
    assert report["per_domain"]["math"] == {"tasks": 6, "tasks_with_demo": 4, "samples": 24,
                                            "verified_samples": 7}
    demo, task = demos[0], solved[0]
    answer = f"The answer is \\boxed{{{task.answer}}}"
    assert demo.messages == [{"role": "user", "content": task.prompt},
                             {"role": "assistant", "content": answer}]
    assert (demo.split, demo.agent_id, demo.tools) == ("train", AGENT_ID, [])
    assert demo.domain == "gym:math"
    frame = to_frame(demos, SftExample)  # the same columns as sft_dataset
    assert frame.columns == list(SftExample.model_fields) and json.loads(frame["tools"][0]) == []


def test_keep_per_task_keeps_distinct_texts_only():
    config = demo_config(keep_per_task=3)
    tasks = generate_tasks(config.sampling)
    demos, _ = sample_demonstrations(policy_for(tasks), config)
    # task 2 has two right samples of one text: one demonstration; task 3 has three right
    # samples of two texts: two demonstrations, though three may be kept
    per_task = {t.task_id: sum(d.trajectory_id == t.task_id for d in demos) for t in tasks}
    assert list(per_task.values()) == [0, 1, 1, 2, 0, 1]
    assert [d.messages[1]["content"].split()[0] for d in demos[2:4]] == ["The", "So:"]


def test_a_task_the_gym_evaluates_is_never_a_demonstration():
    config = demo_config()
    tasks = generate_tasks(config.sampling)
    gym_tasks = [tasks[1], tasks[4]]  # the gym will ask these very prompts
    demos, report = sample_demonstrations(policy_for(tasks), config, exclude=gym_tasks)
    assert report["excluded_gym_tasks"] == 2 and report["tasks"] == 4
    assert [d.trajectory_id for d in demos] == [tasks[i].task_id for i in (2, 3, 5)]
    fresh, excluded = fresh_tasks(config.sampling, gym_tasks)
    assert excluded == 2 and tasks[1] not in fresh


def test_the_gym_stage_default_seed_overlaps_and_the_demo_seed_does_not():
    gym = GymConfig.model_validate({"seed": 0, "domains": {"instruction_following": [24, 8]}})
    same_seed = gym.model_copy(update={"seed": 0})
    assert fresh_tasks(same_seed, generate_tasks(gym))[1] == 32
    other_seed = gym.model_copy(update={"seed": 1})
    assert fresh_tasks(other_seed, generate_tasks(gym))[1] == 0


def test_no_sampling_configured_means_no_demonstrations_and_no_policy_call():
    def policy(prompts, k):
        raise AssertionError("the policy must not be asked")

    demos, report = sample_demonstrations(policy, DemoConfig())
    assert demos == [] and report == {"enabled": False}
