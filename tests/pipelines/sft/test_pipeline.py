"""`kedro run --pipeline=sft --env=test` on the newest sft_dataset: model, report, MLflow, eval."""

import json

import pytest
from mlflow.tracking import MlflowClient

from kimi_pipeline.model_folder import ModelFolder
from tests.conftest import load_catalog, run_kedro

pytestmark = pytest.mark.slow


def test_sft_stage_trains_saves_reports_and_evaluates(project):
    for stage in ("tool_repo", "synthesis", "filtering", "sft"):
        run_kedro(project, stage)
    catalog = load_catalog(project)
    folder = catalog.load("sft_model")
    assert isinstance(folder, ModelFolder) and not folder.missing()
    tokenizer = folder.load_tokenizer()
    assert "<|tool_call|>" in tokenizer.get_vocab() and "generation" in tokenizer.chat_template
    assert folder.load_model().config.num_hidden_layers == 2

    reports = project / "data/08_reporting/sft_report.json"
    report = json.loads(next(reports.rglob("*.json")).read_text())
    training = report["training"]
    assert training["steps"] == 4 and training["final_loss"] < training["first_loss"]
    assert report["packing"]["train"]["efficiency"] > 0.5
    # one agent's examples share its system prompt and tools: run once per row
    assert report["packing"]["train"]["shared_prefix_tokens"] > 0
    for model in ("initial", "sft"):
        figures = report["evaluation"][model]
        assert 0 <= figures["parse_validity_rate"] <= 1 and 0 <= figures["success_rate"] <= 1
        assert figures["episodes"] == 3 and figures["completion_tokens"] > 0  # the model spoke
    # the evaluation is in the catalog for rl, each summary keyed by what it measured
    saved = catalog.load("sft_evaluation")
    assert saved["sft"]["evaluation_key"] != saved["initial"]["evaluation_key"]
    assert saved["sft"]["success_rate"] == report["evaluation"]["sft"]["success_rate"]
    # calls decoded under the tool-call enforcer, as conf/base sets (the test model's template
    # writes <|tool_call|> tags)
    assert saved["sft"]["tool_call_enforcer"] and saved["initial"]["tool_call_enforcer"]
    assert (project / "data/08_reporting/sft_training.png").exists()
    # the tiny model rarely solves a math task: demonstrations may be none, never unverified
    demos = catalog.load("sft_demos")
    assert demos.columns == catalog.load("sft_dataset").columns
    assert report["demonstrations"]["tasks"] == 3
    assert demos.height == report["demonstrations"]["demonstrations"]
    assert report["packing"]["demonstrations"]["distinct"] == demos.height

    client = MlflowClient()
    run = client.search_runs(client.search_experiments()[0].experiment_id,
                             filter_string="params.`sft.optimizer.name` != ''")[0]
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert "sft.final_loss" in run.data.metrics
    assert run.data.params["optim/optimizer"] == "muonclip"
