"""One Kedro pipeline per stage; stages meet only in the catalog.

``stage_pipeline`` wraps a stage's nodes as one namespaced (modular) pipeline, so kedro-viz can
collapse each stage into a single box and a run can pick a stage by ``--namespaces``. The
catalog and parameter names stay as they are written (no ``<stage>.`` prefix); only the node
names gain it: ``tool_repo.harvest_mcp_tools``.
"""

from collections.abc import Iterable

from kedro.pipeline import Node, Pipeline


def stage_pipeline(stage: str, nodes: Iterable[Node]) -> Pipeline:
    """``nodes`` under the namespace ``stage`` and tagged ``stage``, dataset names unchanged."""
    return Pipeline(list(nodes), tags=[stage], namespace=stage,
                    prefix_datasets_with_namespace=False)
