"""The kedro-viz layers of the catalog form one order, and the DAG never runs against it.

kedro-viz draws each layer as a horizontal band and sorts the bands by the DAG; when one
dataset is made (directly or not) from a dataset of a later layer, the layers form a cycle and
kedro-viz switches them off altogether. Its DAG also links each stage's box (a namespace) from
every input of the stage to every dataset the stage hands out. So every dataset of
``__default__`` is declared in ``conf/base/catalog*.yml`` (in-memory ones as ``MemoryDataset``)
with a layer from ``LAYERS``, every node's outputs sit in a layer no earlier than each of its
inputs, and so does every dataset a stage hands out (to another stage, or as a final output)
with respect to each input of the stage.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

LAYERS = ("raw", "intermediate", "primary", "feature", "model_input", "models", "model_output",
          "reporting")


def catalog_entries(conf: Path = REPO / "conf" / "base") -> dict[str, dict]:
    """The catalog entries of ``conf`` as Kedro reads them (``_`` keys are templates, skipped)."""
    entries: dict[str, dict] = {}
    for path in sorted(conf.glob("**/catalog*.yml")):
        loaded = yaml.safe_load(path.read_text()) or {}
        entries.update({name: entry for name, entry in loaded.items() if not name.startswith("_")})
    return entries


def catalog_layers() -> dict[str, str | None]:
    """Each catalog dataset → its ``metadata: kedro-viz: layer`` (None when it has none)."""
    return {name: ((entry.get("metadata") or {}).get("kedro-viz") or {}).get("layer")
            for name, entry in catalog_entries().items()}


def _is_dataset(name: str) -> bool:
    return name != "parameters" and not name.startswith("params:")


@pytest.fixture(scope="module")
def default_pipeline():
    from kimi_pipeline.pipeline_registry import register_pipelines  # slow: imports every stage

    return register_pipelines()["__default__"]


def test_every_catalog_dataset_has_a_layer_of_the_order():
    layers = catalog_layers()
    assert len(layers) > 50
    wrong = {name: layer for name, layer in layers.items() if layer not in LAYERS}
    assert not wrong, f"catalog datasets without a layer from {LAYERS}: {wrong}"


def test_every_dataset_of_the_pipeline_is_declared_with_its_layer(default_pipeline):
    undeclared = sorted(name for name in default_pipeline.datasets()
                        if _is_dataset(name) and name not in catalog_layers())
    assert not undeclared, ("declare these in conf/base/catalog*.yml with a kedro-viz layer "
                            f"(a MemoryDataset if they stay in memory): {undeclared}")


def backwards_steps(steps: list[tuple[str, list[str], list[str]]]) -> list[str]:
    """'who: input (layer) -> output (layer)' for each output of a step in an earlier layer than
    one of the step's inputs; steps are (who, inputs, outputs)."""
    rank = {name: LAYERS.index(layer) for name, layer in catalog_layers().items()
            if layer in LAYERS}
    return [
        f"{who}: {source} ({LAYERS[rank[source]]}) -> {made} ({LAYERS[rank[made]]})"
        for who, sources, made_names in steps
        for source in filter(_is_dataset, sources)
        for made in made_names
        if source in rank and made in rank and rank[made] < rank[source]
    ]


def stage_steps(pipeline) -> list[tuple[str, list[str], list[str]]]:
    """Each namespace of ``pipeline`` as kedro-viz links its box: from the stage's inputs to its
    free outputs and to the outputs other stages read."""
    steps = []
    for stage in sorted({node.namespace for node in pipeline.nodes if node.namespace}):
        inside = pipeline.only_nodes_with_namespaces([stage])
        handed_out = inside.outputs() | ((pipeline - inside).inputs() & inside.all_outputs())
        steps.append((stage, sorted(inside.inputs()), sorted(handed_out)))
    return steps


def test_no_node_makes_a_dataset_of_an_earlier_layer_than_its_inputs(default_pipeline):
    steps = [(node.name, node.inputs, node.outputs) for node in default_pipeline.nodes]
    backwards = backwards_steps(steps)
    assert not backwards, "layers run backwards (kedro-viz would drop them):\n" + "\n".join(
        backwards)


def test_no_stage_hands_out_a_dataset_of_an_earlier_layer_than_its_inputs(default_pipeline):
    steps = stage_steps(default_pipeline)
    assert len(steps) == 7
    backwards = backwards_steps(steps)
    assert not backwards, "layers run backwards across a stage box in kedro-viz:\n" + "\n".join(
        backwards)


def test_every_layer_is_used(default_pipeline):
    used = {catalog_layers().get(name) for name in default_pipeline.datasets()}
    assert set(LAYERS) <= used
