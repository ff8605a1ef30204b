"""The stage pipelines; ``__default__`` runs them in DAG order.

``dataset_producers`` derives, from the same registry, which stage makes each dataset, so a
run missing an input can say which stage (and command) produces it.
"""

from kedro.pipeline import Pipeline

from kimi_pipeline.pipelines import critic, filtering, gym, rl, sft, synthesis, tool_repo

# DAG order; each stage meets the next only through the catalog
STAGES = {
    "tool_repo": tool_repo.create_pipeline,
    "synthesis": synthesis.create_pipeline,
    "filtering": filtering.create_pipeline,
    "sft": sft.create_pipeline,
    "gym": gym.create_pipeline,
    "critic": critic.create_pipeline,
    "rl": rl.create_pipeline,
}


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {name: create() for name, create in STAGES.items()}
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines


def dataset_producers() -> dict[str, str]:
    """Each dataset some stage outputs → the name of that stage."""
    return {name: stage for stage, create in STAGES.items() for name in create().all_outputs()}
