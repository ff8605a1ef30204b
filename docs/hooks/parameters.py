"""MkDocs hook: parameter tables generated from the pydantic config models at build time.

A page asks for a table with a marker on a line of its own:

    <!-- parameters: rl -->                                  a stage: a key of STAGE_CONFIGS
    <!-- model: kimi_pipeline.llm.base.HFBackendConfig -->   any pydantic model, by import path

The marker becomes Markdown (so MkDocs still checks every link it holds): a table of the
top-level fields, then one section per nested model with every field below it as a dotted
parameter path (``rl.train.iterations``; ``[]`` for the items of a list,
``<name>`` for the values of a dict), its type, its default, the value ``conf/base`` sets
(stage tables) and the field's description with its bounds. Defaults of nested models are taken
from the parent's default instance, so ``rl.optimizer.lr`` shows the RL default, not the class
default. Fields holding an LLM backend (``BackendConfig``: a union keyed on ``kind`` of
``OfflineBackendConfig``, ``OpenAIBackendConfig``, ``HFBackendConfig``, used in many places) are
one row with the values that differ from the backend defaults, and the full table of the kind
``conf/base`` (or the default) selects sits in a collapsed block below the section.

An unknown stage or model, or a model that cannot be imported, stops the build.
"""

from __future__ import annotations

import html
import importlib
import json
import posixpath
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from mkdocs.exceptions import PluginError
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

MARKER = re.compile(r"^<!--\s*(parameters|model):\s*([\w.]+)\s*-->\s*$", re.MULTILINE)
# the page documenting the fields of every backend kind, and the heading there
BACKEND_PAGE = "bring-your-own/endpoint.md"
BACKEND_ANCHOR = "backend-fields"
REQUIRED = "<em>required</em>"


class _Required:
    """A field without a default (its parent must set it)."""


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "<!--" not in markdown:
        return markdown
    root = Path(config["config_file_path"]).parent

    def replace(match: re.Match[str]) -> str:
        kind, name = match.groups()
        if kind == "parameters":
            model = _stage_configs(page).get(name)
            if model is None:
                raise PluginError(f"{page.file.src_uri}: no stage config '{name}' in "
                                  f"STAGE_CONFIGS ({', '.join(_stage_configs(page))})")
            base = _base_values(root, name)
            return Table(page.file.src_uri, base_env=True).render(model, name, base)
        return Table(page.file.src_uri, base_env=False).render(_import_model(name, page), "", None)

    return MARKER.sub(replace, markdown)


def _stage_configs(page) -> dict[str, type[BaseModel]]:
    try:
        from kimi_pipeline.config import STAGE_CONFIGS
    except ImportError as exc:
        raise PluginError(f"{page.file.src_uri}: cannot import kimi_pipeline ({exc}); build "
                          "the docs with the project's venv: .venv/bin/mkdocs") from exc
    return STAGE_CONFIGS


def _import_model(path: str, page) -> type[BaseModel]:
    module, _, name = path.rpartition(".")
    try:
        model = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise PluginError(f"{page.file.src_uri}: cannot import model '{path}': {exc}") from exc
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise PluginError(f"{page.file.src_uri}: '{path}' is not a pydantic model")
    return model


def _base_values(root: Path, key: str) -> dict[str, Any]:
    """The section ``key`` as ``conf/base/parameters*.yml`` sets it (later files win)."""
    values: dict[str, Any] = {}
    for path in sorted((root / "conf" / "base").glob("parameters*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data.get(key), dict):
            values.update(data[key])
    return values


def _is_backend(model: Any) -> bool:
    """A backend block's model (a subclass of ``llm.base.BackendSettings``)."""
    return isinstance(model, type) and issubclass(model, BaseModel) and any(
        cls.__name__ == "BackendSettings" for cls in model.__mro__[1:])


def _backend_kind(model: type[BaseModel], default: Any, base_value: Any) -> type[BaseModel]:
    """The backend class of the kind ``conf/base`` names, else the default's."""
    settings = next(cls for cls in model.__mro__ if cls.__name__ == "BackendSettings")
    kinds = {cls.model_fields["kind"].default: cls for cls in settings.__subclasses__()}
    kind = base_value.get("kind") if isinstance(base_value, dict) else None
    return kinds.get(kind or getattr(default, "kind", None), model)


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model a field holds and how: '' (itself or Optional), '[]' (list items), '.<name>'
    (dict values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            model, how = _nested_model(arg)
            if model is not None:
                return model, how
    if origin in (list, tuple, set) and args:
        model, _ = _nested_model(args[0])
        return (model, "[]") if model else (None, "")
    if origin is dict and len(args) == 2:
        model, _ = _nested_model(args[1])
        return (model, ".<name>") if model else (None, "")
    return None, ""


def type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "None"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"tuple[{type_name(args[0])}, ...]"
        return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
    if annotation is Any:
        return "Any"
    return getattr(annotation, "__name__", str(annotation))


def value_text(value: Any) -> str:
    """A default as YAML would write it, on one line."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, _Required):
        return ""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        plain = value and value.strip() == value and value[0] not in "[{"
        return value if plain else json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def _bounds(field) -> str:
    words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for item in field.metadata:
        for attr, sign in words.items():
            if getattr(item, attr, None) is not None:
                parts.append(f"{sign} {getattr(item, attr)}")
    return ", ".join(parts)


def _default(field) -> Any:
    if field.default is PydanticUndefined and field.default_factory is None:
        return _Required()
    try:
        return field.get_default(call_default_factory=True, validated_data={})
    except TypeError:  # a factory that needs the validated data
        return _Required()


def _code(text: str) -> str:
    return f"<code>{_cell(text)}</code>" if text else ""


def _path_cell(path: str) -> str:
    """A dotted parameter path in code, breakable after each dot (``<wbr>``, not copied)."""
    return f"<code>{_cell(path).replace('.', '.<wbr>')}</code>"


def _value_cell(text: str) -> str:
    """A value in code, breakable after each slash (paths)."""
    return f"<code>{_cell(text).replace('/', '/<wbr>')}</code>" if text else ""


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: HTML-escaped, pipes as entities."""
    return html.escape(text, quote=False).replace("|", "&#124;").replace("\n", " ")


def _description(text: str | None) -> str:
    """A field description for a cell: `code` spans kept, everything else escaped."""
    parts = (text or "").split("`")
    if len(parts) % 2 == 0:  # unbalanced backticks: no code spans
        parts = ["`".join(parts)]
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(_code(part))
        else:
            escaped = _cell(part)
            out.append(re.sub(r"([\\*_\[\]])", r"\\\1", escaped))
    return "".join(out)


class Table:
    """The Markdown for one model: an overview table and one section per nested model."""

    def __init__(self, page_uri: str, base_env: bool) -> None:
        self.page_uri = page_uri
        self.base_env = base_env

    def link(self, target: str, anchor: str) -> str:
        here = posixpath.dirname(self.page_uri)
        relative = posixpath.relpath(target, here or ".") if target != self.page_uri else ""
        return f"{relative}#{anchor}"

    def render(self, model: type[BaseModel], prefix: str, base: dict[str, Any] | None) -> str:
        """The top-level table, the backend blocks of its backend fields, then one section
        per nested model."""
        instance = _instance(model)
        rows, backends, sections = [], [], []
        for name, field in model.model_fields.items():
            path = f"{prefix}.{name}" if prefix else name
            default = getattr(instance, name) if instance is not None else _default(field)
            base_value = (base or {}).get(name, _Required())
            nested, how = _nested_model(field.annotation)
            type_cell = _code(type_name(field.annotation))
            if _is_backend(nested):
                backends.append((path, nested, how, default, base_value))
            elif nested is not None:
                type_cell = f"[{type_cell}](#{_anchor(path)})"
                sections.append((path, field, nested, how, default, base_value))
            rows.append(self.row(path, field, type_cell, default, base_value, nested))
        out = [self.table(rows)]
        out += [self.backend_block(*b) for b in backends]
        out += [self.section(*s) for s in sections]
        return "\n\n".join(out) + "\n"

    def header(self) -> list[str]:
        columns = ["parameter", "type", "default"] + (["conf/base"] if self.base_env else [])
        return ["| " + " | ".join(columns + ["description"]) + " |",
                "|" + "---|" * (len(columns) + 1)]

    def table(self, rows: list[str]) -> str:
        return "\n".join(self.header() + rows)

    def row(self, path, field, type_cell, default, base_value, nested) -> str:
        if nested is not None and isinstance(default, BaseModel):
            default_cell = (_code(_differences(default)) if _is_backend(nested)
                            else f"[see below](#{_anchor(path)})" if type_cell.startswith("[")
                            else "")
        elif isinstance(default, _Required):
            default_cell = REQUIRED
        else:
            default_cell = _value_cell(value_text(default))
        if _is_backend(nested):
            type_cell = f"[{_code('BackendConfig')}]({self.link(BACKEND_PAGE, BACKEND_ANCHOR)})"
        description = _description(field.description)
        bounds = _bounds(field)
        if bounds:
            description += f" ({_cell(bounds)})"
        cells = [_path_cell(path), type_cell, default_cell]
        if self.base_env:
            cells.append(self.base_cell(base_value, nested))
        return "| " + " | ".join(cells + [description]) + " |"

    def base_cell(self, value: Any, nested) -> str:
        if isinstance(value, _Required):
            return ""
        if nested is not None and isinstance(value, dict) and not _is_backend(nested):
            return "" if value else _code("{}")
        text = value_text(value)
        return _value_cell(text if len(text) <= 90 else text[:87] + "…")

    def section(self, path, field, model, how, default, base_value) -> str:
        """A heading and the table of every field below ``path`` (nested models flattened,
        backends collapsed below the table)."""
        head = f"### `{path}` {{#{_anchor(path)}}}\n\n{_description(field.description)}"
        if isinstance(default, BaseModel):
            head += f" Type {_code(model.__name__)}."
        elif how == "[]":
            head += f" A list of {_code(model.__name__)}: the fields of each item."
        elif how:
            head += f" A map from a name to {_code(model.__name__)}: the fields of each value."
        elif default is None:
            head += f" Off ({_code('null')}) by default; when set, a {_code(model.__name__)}."
        rows: list[str] = []
        backends: list[tuple] = []
        item_default = default if isinstance(default, BaseModel) else _instance(model)
        item_base = base_value if isinstance(base_value, dict) and not how else {}
        self.walk(model, f"{path}{how}", item_default, item_base, rows, backends)
        blocks = [self.backend_block(*b) for b in backends]
        return "\n\n".join([head, self.table(rows), *blocks])

    def walk(self, model, prefix, instance, base, rows, backends) -> None:
        for name, field in model.model_fields.items():
            path = f"{prefix}.{name}"
            default = getattr(instance, name) if instance is not None else _default(field)
            base_value = (base or {}).get(name, _Required())
            nested, how = _nested_model(field.annotation)
            type_cell = "" if _is_backend(nested) else _code(type_name(field.annotation))
            rows.append(self.row(path, field, type_cell, default, base_value, nested))
            if nested is None:
                continue
            if _is_backend(nested):
                backends.append((path, nested, how, default, base_value))
                continue
            child = default if isinstance(default, BaseModel) else _instance(nested)
            child_base = base_value if isinstance(base_value, dict) and not how else {}
            self.walk(nested, f"{path}{how}", child, child_base, rows, backends)

    def backend_block(self, path, model, how, default, base_value) -> str:
        """A collapsed block with every field of one backend (of the kind it is set to)."""
        rows: list[str] = []
        model = _backend_kind(model, default, base_value)
        instance = default if isinstance(default, model) else _instance(model)
        base = base_value if isinstance(base_value, dict) and not how else {}
        self.walk(model, f"{path}{how}", instance, base, rows, [])
        title = f"{path}{how}: all {len(model.model_fields)} fields of kind {model().kind}"
        body = "\n".join("    " + line for line in self.table(rows).splitlines())
        return f'??? note "{_cell(title)}"\n\n{body}'


def _differences(instance: BaseModel) -> str:
    """Values of ``instance`` that differ from its class defaults."""
    fresh = _instance(type(instance))
    if fresh is None:
        return value_text(instance)
    changed = {k: v for k, v in instance.model_dump(mode="json").items()
               if v != fresh.model_dump(mode="json")[k]}
    return value_text(changed) if changed else "(all defaults)"


def _instance(model: type[BaseModel]) -> BaseModel | None:
    """The model with its defaults (None when some field is required)."""
    try:
        return model()
    except Exception:  # noqa: BLE001 — a required field: defaults are read field by field
        return None


def _anchor(path: str) -> str:
    return "p-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
