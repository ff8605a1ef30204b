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


URL_SECRET = "s3cr3t-Pa55word"


@pytest.mark.parametrize(
    "value, kind",
    [
        (f"https://user:{URL_SECRET}@host/v1", "credentials in a URL"),
        (f"https://host/v1?api_key={URL_SECRET}", "a credential in a URL query"),
        (f"Authorization: Bearer {URL_SECRET}abcdef", "a bearer / basic authorization credential"),
        ("prefix ghp_abcdefghijklmnop1234 suffix", "an API-key-shaped string"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "a JSON web token"),
    ],
)
def test_secret_shapes_inside_any_string_are_refused_naming_key_not_value(value, kind):
    params = {"tool_repo": {"evolve": {"backend": {"base_url": value}}}}
    with pytest.raises(ParameterError) as info:
        validate_parameters(params, {"tool_repo": "conf/base/parameters_tool_repo.yml"})
    message = str(info.value)
    assert "parameter 'tool_repo.evolve.backend.base_url'" in message and kind in message
    assert value not in message and URL_SECRET not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "value",
    ["https://api.openai.com/v1", "ssh://git@github.com/org/repo", "http://localhost:8000/v1",
     "Be brief and use the basic tools.", "Give a basic understanding of photosynthesis.",
     "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"],
)
def test_ordinary_urls_and_text_are_not_secrets(value):
    assert list(find_literal_secrets({"x": {"base_url": value}})) == []


def test_every_bad_parameter_is_listed_with_key_and_file():
    sources = {"tool_repo": "conf/base/p.yml", "tool_repo.evolve.tools_per_domian": "conf/test/p.yml"}
    params = {"tool_repo": {"evolve": {"tools_per_domian": 3}, "sample_size": -1},
              "gym": {"domains": {"math": [2]}, "sampels": 4}}
    with pytest.raises(ParameterError) as info:
        validate_parameters(params, sources)
    message = str(info.value)
    assert message.startswith("3 parameter problems: ")
    assert "parameter 'tool_repo.evolve.tools_per_domian' in conf/test/p.yml" in message
    assert "parameter 'tool_repo.sample_size' in conf/base/p.yml" in message
    assert "parameter 'gym.sampels' in the run's parameters" in message


def test_url_credentials_never_reach_mlflow(project):
    url = f"https://user:{URL_SECRET}@host/v1"
    params = {"tool_repo": {"evolve": {"backend": {"kind": "openai", "base_url": url}}}}
    with pytest.raises(ParameterError, match=r"tool_repo\.evolve\.backend\.base_url") as info:
        run_kedro(project, "tool_repo", params=params)
    assert URL_SECRET not in str(info.value)
    for path in project.rglob("*"):
        if path.is_file() and "01_raw" not in path.parts:
            assert URL_SECRET.encode() not in path.read_bytes(), f"secret written to {path}"
