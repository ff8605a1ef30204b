"""`kedro viz run` reads by stage: each stage a collapsible namespace over ordered layer bands.

The DAG is too big to read whole, so each stage is a namespaced modular pipeline that kedro-viz
collapses into one box, and every dataset has a layer (tests/test_layers.py keeps them in
order). Here kedro-viz is served on loopback against a copy of the project; its JSON API (the
graph the UI draws) must list every stage as a modular pipeline holding that stage's nodes, the
layers in order (kedro-viz sends none when they form a cycle) and a layer on every dataset. Then
headless Chromium opens what a user opens, the whole pipeline with the stages collapsed and one
stage in focus mode expanded, checks what it rendered and keeps screenshots (set
``KIMI_SCREENSHOT_DIR`` to look at them).
"""

from __future__ import annotations

import json
import struct
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.browser import chromium, free_port, screenshot_dir, serve
from tests.devtools import Page
from tests.test_layers import LAYERS

KEDRO = Path(sys.executable).with_name("kedro")
SIZE = (1600, 1000)
FOCUSED_STAGE = "gym"  # the stage whose expanded view is screenshotted
# kedro-viz's own UI settings: no first-visit hint tour, no minimap over the bottom band
VIZ_SETTINGS = {"KedroViz": {"showFeatureHints": False, "visible": {"miniMap": False}}}
# what the UI drew, as JSON, for the test to check and to wait on until it stops moving
RENDERED = """JSON.stringify({
  layers: [...document.querySelectorAll('.pipeline-layer-name')].map(e => e.textContent.trim()),
  stages: document.querySelectorAll('.pipeline-node--modularPipeline').length,
  tasks: document.querySelectorAll('.pipeline-node--task').length,
  datasets: document.querySelectorAll('.pipeline-node--data').length,
  zoom: document.querySelector('g.pipeline-zoom-wrapper')?.getAttribute('transform') ?? null,
})"""
DISMISS_BANNERS = """[...document.querySelectorAll('button')]
  .filter(b => b.textContent.trim() === 'Dismiss').forEach(b => b.click())"""


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return json.load(reply)


def stage_tasks(base: str, stages: list[str]) -> dict[str, dict[str, str]]:
    """Each stage → its registered pipeline's task nodes (id → full name), from the API."""
    return {stage: {node["id"]: node["full_name"]
                    for node in get_json(f"{base}/api/pipelines/{stage}")["nodes"]
                    if node["type"] == "task"}
            for stage in stages}


def check_stages(graph: dict, tasks_by_stage: dict[str, dict[str, str]]) -> None:
    modular = graph["modular_pipelines"]
    assert set(modular) - {"__root__"} == set(tasks_by_stage), "a stage is not a namespace"
    for stage, tasks in tasks_by_stage.items():
        assert tasks, f"stage {stage} lists no nodes"
        assert all(name.startswith(f"{stage}.") for name in tasks.values()), tasks
        children = {child["id"] for child in modular[stage]["children"]}
        assert set(tasks) <= children, f"nodes of {stage} outside its namespace"
    all_tasks = {node["id"] for node in graph["nodes"] if node["type"] == "task"}
    assert all_tasks == set().union(*tasks_by_stage.values()), "nodes outside every stage"


def check_layers(graph: dict) -> None:
    assert graph["layers"] == list(LAYERS), "kedro-viz drops layers when they form a cycle"
    unlayered = sorted(node["name"] for node in graph["nodes"]
                       if node["type"] == "data" and node.get("layer") not in LAYERS)
    assert not unlayered, f"datasets without a layer in kedro-viz: {unlayered}"


def look(page: Page, url: str, path: Path) -> dict:
    """Open ``url``, wait for the drawing to settle, screenshot it; return what it drew."""
    page.open(url, VIZ_SETTINGS)
    page.wait_until_still("document.querySelectorAll('.pipeline-node').length")
    page.evaluate(DISMISS_BANNERS)
    drawn = json.loads(page.wait_until_still(RENDERED))
    page.screenshot(path)
    return drawn


def in_layer_order(names: list[str]) -> bool:
    return names == [layer for layer in LAYERS if layer in names]


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert struct.unpack(">II", data[16:24]) == SIZE, f"{path} is not {SIZE}"
    assert len(data) > 40_000, f"{path} is nearly blank ({len(data)} bytes)"


@pytest.mark.slow
def test_kedro_viz_shows_stages_collapsed_over_ordered_layers(project, tmp_path):
    browser = chromium()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(KEDRO), "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port",
               str(port), "--env", "test"]
    shots = screenshot_dir(tmp_path)
    with serve(command, f"{base}/api/main", cwd=project):
        graph = get_json(f"{base}/api/main")
        stages = [p["id"] for p in graph["pipelines"] if p["id"] != "__default__"]
        tasks_by_stage = stage_tasks(base, stages)
        check_stages(graph, tasks_by_stage)
        check_layers(graph)
        with Page(browser, SIZE) as page:
            whole = look(page, f"{base}/?pid=__default__&expandAllPipelines=false",
                         shots / "viz_stages_collapsed.png")
            overview = look(page, f"{base}/?pid=__default__&expandAllPipelines=false"
                                  "&types=modularPipeline,task", shots / "viz_stages.png")
            focused = look(page, f"{base}/?pid=__default__&fid={FOCUSED_STAGE}"
                                 "&expandAllPipelines=true", shots / f"viz_{FOCUSED_STAGE}.png")

    assert (whole["stages"], whole["tasks"]) == (len(stages), 0), whole
    assert in_layer_order(whole["layers"]) and len(whole["layers"]) >= 6, whole
    # datasets hidden: the seven stage boxes alone, joined where one feeds another
    assert (overview["stages"], overview["datasets"]) == (len(stages), 0), overview
    assert focused["tasks"] == len(tasks_by_stage[FOCUSED_STAGE]), focused
    assert in_layer_order(focused["layers"]) and "reporting" in focused["layers"], focused
    for name in ("viz_stages_collapsed.png", "viz_stages.png", f"viz_{FOCUSED_STAGE}.png"):
        check_png(shots / name)
