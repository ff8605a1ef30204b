"""The episode loop and sharded rollouts: HTTP parity, recorded failures, kill-and-resume."""

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from kimi_pipeline.agents.bundles import AgentConfig, sample_agents
from kimi_pipeline.agents.policy import ImperfectionConfig
from kimi_pipeline.agents.tasks import TaskConfig, write_all_tasks
from kimi_pipeline.envs.base import FaultConfig
from kimi_pipeline.agents.episode import EpisodeConfig, run_episode
from kimi_pipeline.agents.rollout import RolloutConfig, run_shards
from kimi_pipeline.llm.base import (
    ChatResponse,
    make_backend,
    OfflineBackendConfig,
    OpenAIBackendConfig,
)
from kimi_pipeline.llm.server import ServerThread, create_app
from kimi_pipeline.records import Task, ToolCall, Trajectory, from_frame, to_frame
from tests.agents.test_bundles import sample_tools

OFFLINE = OfflineBackendConfig()
QUIET = EpisodeConfig(
    faults=FaultConfig(transient_error_rate=0, partial_result_rate=0, empty_result_rate=0,
                       edge_case_rate=0),
    imperfections=ImperfectionConfig(wrong_argument_rate=0, missing_argument_rate=0,
                                     skip_clarification_rate=0, give_up_rate=0,
                                     hallucinated_success_rate=0),
)


def build_world():
    tools = sample_tools()
    backend = make_backend(OFFLINE)
    agents, _ = sample_agents(tools, 6, backend, AgentConfig(), seed=1)
    tasks, _ = write_all_tasks(agents, tools, backend, TaskConfig(tasks_per_agent=4), seed=1)
    return tools, {a.agent_id: a for a in agents}, tasks


@pytest.fixture(scope="module")
def world():
    return build_world()


def _play(world, task, agent_backend, config=QUIET, seed=7):
    tools, agents, _ = world
    agent = agents[task.agent_id]
    bundle = [t for t in tools if t.tool_id in agent.tool_ids]
    return asyncio.run(run_episode(agent, task, bundle, agent_backend, make_backend(OFFLINE),
                                   "terse", seed, config))


def test_episode_over_real_http_matches_in_process(world):
    """The OpenAI-compatible path (real HTTP, JSON tool calls) plays the same dialogue."""
    task = next(t for t in world[2] if t.kind == "chained")
    local = _play(world, task, make_backend(OFFLINE))
    with ServerThread(create_app(make_backend(OFFLINE), "offline")) as server:
        remote_backend = make_backend(OpenAIBackendConfig(base_url=server.base_url,
                                                          send_context=True, cache_dir=None))
        remote = _play(world, task, remote_backend)
    assert remote.backend == "openai" and remote.outcome.errors == []
    assert [m.model_dump() for m in remote.messages] == [m.model_dump() for m in local.messages]
    assert remote.final_state == local.final_state
    assert remote.prompt_tokens > 0


def test_endpoint_timeout_is_a_recorded_failure(world):
    task = world[2][0]
    with ServerThread(create_app(make_backend(OFFLINE), "offline", latency_s=5.0)) as server:
        slow = make_backend(OpenAIBackendConfig(base_url=server.base_url, timeout_s=0.3,
                                                max_retries=0, cache_dir=None, send_context=True))
        trajectory = _play(world, task, slow)
    assert trajectory.outcome.end_reason == "agent_error"
    assert "agent backend" in trajectory.outcome.errors[0]
    assert trajectory.messages[-1].role == "user"


class BadCallsDouble:
    """Test double for an agent model that writes broken tool calls, then gives up."""

    name = "double"

    def __init__(self):
        self.turn = 0

    async def acomplete(self, request):
        self.turn += 1
        if self.turn == 1:
            return ChatResponse(content=None, tool_calls=[
                ToolCall(id="c1", name="launch_rocket", arguments={}),
                ToolCall(id="c2", name=request.tools[0]["function"]["name"], raw_arguments="{oops"),
            ])
        return ChatResponse(content="Sorry, I cannot complete this request.")


def test_bad_tool_calls_are_recorded_not_fatal(world):
    trajectory = _play(world, world[2][0], BadCallsDouble())
    tool_results = [json.loads(m.content) for m in trajectory.messages if m.role == "tool"]
    assert [r["error"]["type"] for r in tool_results] == ["unknown_tool", "invalid_json"]
    assert trajectory.outcome.errors == ["unknown_tool: launch_rocket",
                                         f"invalid_json: {trajectory.messages[2].tool_calls[1].name}"]
    assert trajectory.outcome.finished


def tools_for(tools):
    return lambda agent: [t for t in tools if t.tool_id in agent.tool_ids]


def _shard_frames(paths):
    frame = pl.concat([pl.read_parquet(p) for p in paths]).drop("latency_s")
    return frame.sort("trajectory_id")


def test_killed_run_resumes_to_the_same_trajectories(world, tmp_path):
    tools, agents, tasks = world
    frame = to_frame(tasks, Task)
    rollout = RolloutConfig(shard_size=5, workers=1)
    clean = run_shards(frame, agents, tools_for(tools), tmp_path / "clean", rollout,
                       EpisodeConfig(), OFFLINE, OFFLINE)

    # a separate process that is SIGKILLed as soon as its second shard is on disk
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from tests.agents.test_episode import build_world, OFFLINE
        from kimi_pipeline.agents.episode import EpisodeConfig
        from kimi_pipeline.agents.rollout import RolloutConfig, run_shards
        from kimi_pipeline.records import Task, to_frame
        from tests.agents.test_episode import tools_for
        tools, agents, tasks = build_world()
        done = []
        def progress(n):
            done.append(n)
            if len(done) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        run_shards(to_frame(tasks, Task), agents, tools_for(tools), Path({str(tmp_path / "killed")!r}),
                   RolloutConfig(shard_size=5, workers=1), EpisodeConfig(), OFFLINE, OFFLINE, progress)
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    assert killed.returncode == -9
    survivors = sorted((tmp_path / "killed").glob("shard-*.parquet"))
    assert 0 < len(survivors) < len(clean)

    (tmp_path / "killed" / "shard-00099.parquet.tmp-1").write_bytes(b"half a shard")  # mid-write kill
    resumed = run_shards(frame, agents, tools_for(tools), tmp_path / "killed", rollout,
                         EpisodeConfig(), OFFLINE, OFFLINE)
    assert not list((tmp_path / "killed").glob("*.tmp-*"))
    assert [p.name for p in resumed] == [p.name for p in clean]
    a, b = _shard_frames(clean), _shard_frames(resumed)
    assert a.height == len(tasks) and a["trajectory_id"].n_unique() == a.height
    assert a.equals(b)
    records, bad = from_frame(b.with_columns(pl.lit(0.0).alias("latency_s")), Trajectory, "test")
    assert bad == [] and len(records) == len(tasks)
