"""Parameters are validated at load: one message naming the key and the file; no literal secrets."""

import pytest

from kimi_pipeline.config import ParameterError, find_literal_secrets, validate_parameters
from tests.conftest import run_kedro


def test_defaults_validate_and_parse():
    parsed = validate_parameters({"tool_repo": {}})
    assert parsed["tool_repo"].evolve.backend.kind == "offline"


@pytest.mark.parametrize(
    "params, key",
    [
        ({"tool_repo": {"evolve": {"tool_per_domain": 3}}}, "tool_repo.evolve.tool_per_domain"),
        ({"tool_repo": {"evolve": {"tools_per_domain": "many"}}}, "tool_repo.evolve.tools_per_domain"),
        ({"tool_repo": {"mcp_servers": [{"name": "x"}]}}, "tool_repo.mcp_servers.0.command"),
        ({"tool_repo": {"map": {"projection": "umap"}}}, "tool_repo.map.projection"),
    ],
)
def test_wrong_key_or_type_names_the_key(params, key):
    with pytest.raises(ParameterError, match=key.replace(".", r"\.")):
        validate_parameters(params, {"tool_repo": "conf/base/parameters_tool_repo.yml"})


def test_error_names_the_file_that_set_the_key():
    sources = {"tool_repo": "conf/base/p.yml", "tool_repo.evolve": "conf/test/p.yml",
               "tool_repo.evolve.seed": "conf/test/p.yml"}
    with pytest.raises(ParameterError, match="conf/test/p.yml"):
        validate_parameters({"tool_repo": {"evolve": {"seed": "x"}}}, sources)


@pytest.mark.parametrize(
    "params",
    [
        {"tool_repo": {"evolve": {"backend": {"api_key": "abc123"}}}},
        {"llm": {"token": "t0ps3cret"}},
        {"anything": ["sk-proj-abcdefghijklmnop1234"]},
        {"x": {"hf": "hf_abcdefghijklmnopqrstu"}},
    ],
)
def test_literal_secrets_are_refused(params):
    assert list(find_literal_secrets(params))
    with pytest.raises(ParameterError, match="literal secret"):
        validate_parameters(params)


def test_secret_shaped_names_that_are_not_secrets_pass():
    params = {"tool_repo": {"evolve": {"backend": {"api_key_env": "OPENAI_API_KEY", "max_tokens": 64}}}}
    assert list(find_literal_secrets(params)) == []


def test_kedro_run_stops_before_any_node_naming_key_and_file(project):
    bad = project / "conf" / "test" / "parameters_tool_repo.yml"
    bad.write_text(bad.read_text().replace("tools_per_domain: 3", "tools_per_domain: lots"))
    with pytest.raises(ParameterError) as info:
        run_kedro(project, "tool_repo")
    message = str(info.value)
    assert "tool_repo.evolve.tools_per_domain" in message
    assert str(bad) in message
    assert not (project / "data" / "03_primary").exists()


def test_command_line_params_are_named_as_such(project):
    with pytest.raises(ParameterError, match="--params on the command line"):
        run_kedro(project, "tool_repo", params={"tool_repo": {"sample_size": -1}})


@pytest.mark.parametrize("env", ["base", "test", "gpu"])
def test_every_shipped_environment_validates(project, env):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=None if env == "base" else env) as session:
        parsed = validate_parameters(session.load_context().params)
    assert {"tool_repo", "synthesis", "filtering"} <= set(parsed)
    if env == "gpu":
        assert parsed["synthesis"].agent_backend.kind == "openai"
