"""The registries: a name taken twice by different objects is refused, the same definition
registered again is not; lazy names import their module on first lookup; an unknown name
lists the known ones."""

from __future__ import annotations

import sys

import pytest

from kimi_pipeline.registry import DuplicateName, Registry, UnknownName, registrar


def test_a_second_different_object_under_a_taken_name_is_refused():
    table: dict = {}
    register = registrar(table, "judge")

    @register("exact")
    def first(): ...

    with pytest.raises(DuplicateName, match="judge 'exact' is already registered"):
        @register("exact")
        def second(): ...

    register("exact")(first)  # the same object again: allowed
    assert table == {"exact": first}


def test_the_same_definition_imported_twice_may_register_again():
    table: dict = {}
    register = registrar(table)

    def make():
        class Domain:  # a new class object each call, one definition (module + qualname)
            pass
        return Domain

    register("d")(make())
    register("d")(make()())  # an instance of the same definition
    assert "d" in table


def test_a_lazy_name_imports_its_module_and_an_unknown_name_lists_the_known(monkeypatch):
    monkeypatch.delitem(sys.modules, "kimi_pipeline.envs.sqlite_env", raising=False)
    registry = Registry("environment", lazy={"sqlite": "kimi_pipeline.envs.sqlite_env"})
    registry.register("memory")(dict)
    assert registry.names() == ["memory", "sqlite"] and "sqlite" not in registry
    # the real module registers into the project's own registry, not this one
    with pytest.raises(UnknownName) as raised:
        registry.lookup("sqlite")
    assert "kimi_pipeline.envs.sqlite_env" in sys.modules
    assert str(raised.value) == "unknown environment 'sqlite'; known: ['memory', 'sqlite']"
    with pytest.raises(KeyError):
        registry.lookup("nope")
    with pytest.raises(ValueError, match="unknown environment 'nope'"):
        registry.lookup("nope")


def test_the_project_registries_load_lazily():
    from kimi_pipeline.envs.base import make_environment
    from kimi_pipeline.gym.registry import all_domains, get_domain
    from kimi_pipeline.llm.base import make_backend

    assert get_domain("math").name == "math"
    assert set(all_domains()) >= {"math", "logic", "coding", "safety", "faithfulness",
                                  "instruction_following"}
    env = make_environment("simulated")
    env.close()
    assert make_backend({"kind": "offline"}) is not None
