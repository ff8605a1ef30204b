"""`kedro run --pipeline=filtering --env=test` on the newest trajectories."""

import json

import polars as pl
import pytest

from kimi_pipeline.records import SftExample, from_frame
from tests.conftest import load_catalog, run_kedro
from tests.fingerprints import check_outputs

pytestmark = pytest.mark.slow


def test_filtering_stage_makes_a_training_ready_sft_set(project):
    for stage in ("tool_repo", "synthesis", "filtering"):
        run_kedro(project, stage)
    catalog = load_catalog(project)
    examples, bad = from_frame(catalog.load("sft_dataset"), SftExample, "test")
    rejections = catalog.load("filter_rejections")
    trajectory_ids = set(catalog.load("trajectories").collect()["trajectory_id"])
    assert not bad and examples
    assert {e.trajectory_id for e in examples} | set(rejections["trajectory_id"]) == trajectory_ids
    assert rejections.filter(pl.col("reason") == "").height == 0
    for example in examples:
        assert example.tools and example.messages[-1]["role"] == "assistant"
        for message in example.messages:
            for call in message.get("tool_calls") or []:
                assert isinstance(call["function"]["arguments"], dict)
    report = json.loads(next((project / "data/08_reporting/filter_report.json").rglob("*.json")).read_text())
    assert report["funnel"]["trajectories"] == len(trajectory_ids)
    assert report["judge_quality"]["agreement_with_compare_judge"]["agreement"] == 1.0
    assert (project / "data/08_reporting/filter_funnel.png").exists()
    check_outputs(catalog)  # refactors leave every test-env dataset of the first three stages as it was
