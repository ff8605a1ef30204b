"""The one mechanism behind the project's small name → implementation registries.

Domains, backends, environments, judges, criteria, task kinds … plug in by name (the house rule:
small registries instead of if/else chains).

- ``registrar(table)`` makes the ``@register("name")`` decorator of a plain dict, so each
  registry is its table plus one line.
- ``Registry(what, lazy={name: module})`` is that table when implementations live in modules
  nobody imports up front (heavy ones, or ones a worker process needs without set-up): looking
  a name up (``lookup``) imports its module, whose decorator registers it; an unknown name is an
  ``UnknownName`` error listing the known ones.

Both refuse a second, different object under a name already taken (``DuplicateName``): two
plug-ins choosing one name would otherwise replace each other silently, depending on import
order. Registering the same definition again — a module imported twice, as ``__main__`` and by
name, or reloaded — is allowed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")


class DuplicateName(ValueError):
    """A name registered twice with different objects."""


class UnknownName(KeyError, ValueError):
    """A name no implementation is registered under (a KeyError for lookups, a ValueError for
    configuration checks); its message lists the known names."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


def _definition(obj: object) -> tuple[str, str] | None:
    """Where ``obj`` (or, for an instance, its class) is defined; None when unknown."""
    target = obj if hasattr(obj, "__qualname__") else type(obj)
    module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    return (module, name) if module and name else None


def _same_definition(old: object, new: object) -> bool:
    if old is new:
        return True
    where = _definition(old)
    return where is not None and where == _definition(new) and where[0] not in ("builtins",)


def add(table: dict[str, T], name: str, obj: T, what: str = "name") -> T:
    """``table[name] = obj``, refusing a different object under a name already taken."""
    if name in table and not _same_definition(table[name], obj):
        raise DuplicateName(f"{what} {name!r} is already registered by {table[name]!r}; "
                            f"{obj!r} would replace it (pick another name)")
    table[name] = obj
    return obj


def registrar(table: dict[str, T], what: str = "name") -> Callable[[str], Callable[[T], T]]:
    """``register = registrar(table)``; then ``@register("name")`` stores the object in
    ``table``."""

    def register(name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            return add(table, name, obj, what)

        return wrap

    return register


class Registry(dict[str, T]):
    """A name → implementation table whose entries may register on first lookup.

    ``lazy`` maps a name to the module defining it; ``lookup(name)`` imports that module when the
    name is not registered yet (``get`` stays the dict's); ``names()`` lists registered and
    lazily available names."""

    def __init__(self, what: str, lazy: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.what = what  # what an entry is, for messages ("environment", "gym domain")
        self.lazy = dict(lazy or {})  # name -> module that registers it on import

    def register(self, name: str) -> Callable[[T], T]:
        """``@registry.register("name")`` on a class or function."""
        return lambda obj: add(self, name, obj, self.what)

    def add(self, name: str, obj: T) -> T:
        return add(self, name, obj, self.what)

    def lookup(self, name: str) -> T:
        """The implementation registered under ``name``, importing its module if needed."""
        if name not in self and name in self.lazy:
            importlib.import_module(self.lazy[name])
        if name not in self:
            raise UnknownName(f"unknown {self.what} {name!r}; known: {self.names()}")
        return self[name]

    def names(self) -> list[str]:
        return sorted(set(self) | set(self.lazy))

    def load_all(self) -> dict[str, T]:
        """Every implementation, lazily registered ones imported, sorted by name."""
        for name in self.lazy:
            self.lookup(name)
        return dict(sorted(self.items()))
