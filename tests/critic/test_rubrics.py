"""Critic rubrics as configuration: the shipped file loads; mistakes stop with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kimi_pipeline.critic.rubrics import CriticRubric, RubricError, RubricSet, load_rubrics
from kimi_pipeline.errors import UserError

SHIPPED = Path(__file__).resolve().parents[2] / "conf" / "base" / "critic_rubrics.yml"


def rubric(name: str, **fields) -> dict:
    return {"name": name, "title": name.title(), "description": f"About {name}.",
            "kind": "core", **fields}


def load_error(data) -> str:
    with pytest.raises(ValueError) as caught:
        load_rubrics(data)
    assert isinstance(caught.value, (RubricError, UserError))
    message = str(caught.value)
    assert "\n" not in message and "pydantic" not in message.lower()
    return message


def test_shipped_rubrics_load_with_k2_core_and_prescriptive_rubrics():
    rubrics = load_rubrics(SHIPPED)
    kinds = {r.name: r.kind for r in rubrics.rubrics}
    assert kinds == {
        "clarity_relevance": "core",
        "conversational_fluency": "core",
        "objective_grounded": "core",
        "no_initial_praise": "prescriptive",
        "no_explicit_justification": "prescriptive",
    }
    for name in ("no_initial_praise", "no_explicit_justification"):
        assert rubrics.get(name).mandatory and rubrics.get(name).rule == name
    assert all(r.description.strip() for r in rubrics.rubrics)


def test_shipped_file_documents_a_human_rubric_example_that_also_loads():
    lines = SHIPPED.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "kind: human" in line)
    while not lines[start].lstrip("# ").startswith("- name:"):
        start -= 1
    example = []
    for line in lines[start:]:
        if not line.startswith("  #"):
            break
        example.append(line[:2] + line[4:])  # uncomment, keep the list indentation
    data = yaml.safe_load("rubrics:\n" + "\n".join(example))
    human = load_rubrics({"rubrics": [rubric("clarity"), *data["rubrics"]]}).rubrics[-1]
    assert human.kind == "human" and human.contexts


def test_path_may_be_given_as_text(tmp_path):
    path = tmp_path / "rubrics.yml"
    path.write_text(yaml.safe_dump({"rubrics": [rubric("clarity")]}))
    assert load_rubrics(str(path)).names == ["clarity"]


def test_unknown_key_names_file_rubric_and_key(tmp_path):
    path = tmp_path / "rubrics.yml"
    path.write_text(yaml.safe_dump({"rubrics": [rubric("clarity"), rubric("tone", weigth=2)]}))
    message = load_error(path)
    assert str(path) in message and "'tone'" in message and "'weigth'" in message
    assert "unknown key" in message


def test_unknown_rule_names_the_rubric_and_the_rule():
    message = load_error({"rubrics": [
        rubric("clarity"),
        rubric("no_emoji", kind="prescriptive", mandatory=True, rule="no_emojis"),
    ]})
    assert "'no_emoji'" in message and "'rule'" in message and "no_emojis" in message
    assert "no_initial_praise" in message  # says which rules exist


def test_duplicate_names_are_refused_by_name():
    message = load_error({"rubrics": [rubric("clarity"), rubric("clarity")]})
    assert "duplicate" in message and "clarity" in message


def test_rubric_without_a_name_is_named_by_index():
    entry = rubric("tone")
    del entry["name"]
    message = load_error({"rubrics": [rubric("clarity"), entry]})
    assert "#1" in message and "'name'" in message and "missing" in message


def test_every_problem_is_reported_in_the_one_line():
    message = load_error({"rubrics": [rubric("clarity", colour="red"), rubric("Bad Name")]})
    assert "'colour'" in message and "Bad Name" in message and "snake_case" in message


@pytest.mark.parametrize(("data", "expected"), [
    ({"rubrics": [rubric("no_praise", kind="prescriptive")]}, "needs a 'rule'"),
    ({"rubrics": [rubric("style", kind="human")]}, "no core rubric"),
    ({"rubrics": [rubric("clarity", weight=0)]}, "weight"),
    ({"rubrics": [rubric("clarity", weight=-1)]}, "'weight'"),
    ({"rubric": []}, "unknown top-level key"),
    (["clarity"], "expected a mapping"),
])
def test_set_level_mistakes_are_explained(data, expected):
    assert expected in load_error(data)


def test_missing_and_broken_files_name_the_file(tmp_path):
    assert "does not exist" in load_error(tmp_path / "nope.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("rubrics:\n  - name: [unclosed\n")
    message = load_error(broken)
    assert str(broken) in message and "line" in message


def test_for_context_keeps_general_rubrics_and_those_of_the_context():
    rubrics = load_rubrics({"rubrics": [
        rubric("clarity"),
        rubric("keeps_form", kind="human", contexts=["creative_writing"]),
        rubric("cites_steps", kind="human", contexts=["advice", "explanation"]),
    ]})
    assert [r.name for r in rubrics.for_context("creative_writing")] == ["clarity", "keeps_form"]
    assert [r.name for r in rubrics.for_context("math")] == ["clarity"]
    assert rubrics.names == ["clarity", "keeps_form", "cites_steps"]


def test_rubric_fields_are_documented_and_strict():
    for model in (CriticRubric, RubricSet):
        assert model.model_config["extra"] == "forbid"
        assert all(f.description for f in model.model_fields.values())
