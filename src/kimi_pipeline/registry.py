"""The one decorator behind the project's small name → implementation registries.

Domains, backends, environments, judges, criteria, task kinds … plug in by name (the house rule:
small registries instead of if/else chains). Where registering is only ``table[name] = obj``,
``registrar(table)`` makes the decorator, so each registry is its table plus one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def registrar(table: dict[str, T]) -> Callable[[str], Callable[[T], T]]:
    """``register = registrar(table)``; then ``@register("name")`` stores the object in ``table``."""

    def register(name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            table[name] = obj
            return obj

        return wrap

    return register
