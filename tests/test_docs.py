"""The docs site: `mkdocs build --strict` passes (no warning: a broken link or anchor fails it),
and every field of every stage's parameter model is on its stage page (the tables are generated
at build time by docs/hooks/parameters.py, so this catches a page without its marker, a hook
that skips fields, and a stage config with no page)."""

from __future__ import annotations

import html
import os
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]

# every key of kimi_pipeline.config.STAGE_CONFIGS -> the page documenting it
PAGES = {
    "tool_repo": "stages/tool_repo",
    "synthesis": "stages/synthesis",
    "filtering": "stages/filtering",
    "base_model": "stages/sft",
    "sft_demos": "stages/sft",
    "sft": "stages/sft",
    "sft_evaluation": "stages/sft",
    "gym": "stages/gym",
    "critic": "stages/critic",
    "rl": "stages/rl",
}


def mkdocs_command() -> list[str]:
    """The venv's mkdocs: the script beside the running interpreter, else ``-m mkdocs``."""
    script = Path(sys.executable).with_name("mkdocs")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mkdocs"]


def build(config: Path, site: Path) -> subprocess.Popen:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.Popen(
        [*mkdocs_command(), "build", "--strict", "--config-file", str(config), "-d", str(site)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, tuple[Path, subprocess.Popen]]:
    """Both builds start at once: the site (it imports the project, ~10 s) and a one-page site
    with broken links; this process imports the configs meanwhile."""
    out = tmp_path_factory.mktemp("site")
    broken = tmp_path_factory.mktemp("broken")
    docs = broken / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[gone](nowhere.md) and [no anchor](#nowhere)\n")
    config = broken / "mkdocs.yml"
    config.write_text(f"INHERIT: {REPO / 'mkdocs.yml'}\ndocs_dir: {docs}\nhooks: []\n"
                      "nav:\n  - Home: index.md\n")
    started = {"site": (out, build(REPO / "mkdocs.yml", out)),
               "broken": (broken / "site", build(config, broken / "site"))}
    import kimi_pipeline.config  # noqa: F401 — while the builds run
    yield started
    for _, proc in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def site(builds) -> Path:
    out, proc = builds["site"]
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    assert "WARNING" not in log, log
    return out


def page_html(site: Path, page: str) -> str:
    """A built page, without the ``<wbr>`` break hints the tables put into paths."""
    return (site / page / "index.html").read_text().replace("<wbr>", "")


def parameter_paths(model: type[BaseModel], prefix: str):
    """Every field below ``prefix`` as the docs write it: dotted, ``[]`` for list items,
    ``.<name>`` for dict values."""
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}"
        yield path
        nested, suffix = _held_model(field.annotation)
        if nested is not None:
            yield from parameter_paths(nested, path + suffix)


def _held_model(annotation) -> tuple[type[BaseModel] | None, str]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if _held_model(arg)[0] is not None:
                return _held_model(arg)
    if origin in (list, tuple, set) and args and _held_model(args[0])[0] is not None:
        return _held_model(args[0])[0], "[]"
    if origin is dict and len(args) == 2 and _held_model(args[1])[0] is not None:
        return _held_model(args[1])[0], ".<name>"
    return None, ""


def test_every_stage_config_has_a_page(builds):  # builds: they start before this import
    from kimi_pipeline.config import STAGE_CONFIGS

    assert set(PAGES) == set(STAGE_CONFIGS)
    for key, page in PAGES.items():
        source = (REPO / "docs" / f"{page}.md").read_text()
        assert f"<!-- parameters: {key} -->" in source, f"docs/{page}.md lacks the {key} marker"


@pytest.mark.parametrize("key", sorted(PAGES))
def test_every_parameter_is_on_its_page(site, key):
    from kimi_pipeline.config import STAGE_CONFIGS

    page = page_html(site, PAGES[key])
    assert "<!-- parameters:" not in page
    missing = [path for path in parameter_paths(STAGE_CONFIGS[key], key)
               if f"<code>{html.escape(path, quote=False)}</code>" not in page]
    assert not missing, f"{PAGES[key]} does not document {missing}"


def test_reference_pages_are_built(site):
    assert (site / "architecture" / "index.html").exists()
    commands = page_html(site, "commands")
    for command in ("kedro run --pipeline=&lt;stage&gt;", "kedro viz run", "kedro mlflow ui",
                    "kimi-pipeline doctor", "kimi-pipeline report"):
        assert command in commands, command


def test_a_broken_link_fails_the_build(builds):
    """The validation settings of mkdocs.yml turn a missing page and a missing anchor into
    warnings, which --strict makes fatal."""
    _, proc = builds["broken"]
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, log
    assert "nowhere.md" in log and "#nowhere" in log, log
