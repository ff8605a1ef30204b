"""What a tool does, inferred from its name, description and schema.

The world model, the task writer and the offline agent all need the same reading of a tool:
which operation it performs (create / read / list / update / delete / action), on which kind
of resource, which argument names the target, which arguments set or filter fields. A tool
named ``cancel_limit_order(order_id, reason)`` is an update of an ``order`` to status
``cancelled``; ``list_open_positions(account_id, limit)`` lists ``positions`` filtered by
``account_id``. The reading is a deterministic heuristic over verbs and nouns, so any spec in
the repository — real or synthetic — can be simulated without hand-written adapters. ``label``
reads a name as words ('customer_email' → 'customer email') for requests and answers about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from kimi_pipeline.text import plural, singular, split_words

Operation = Literal["create", "read", "list", "update", "delete", "action"]

# verb -> operation; the first verb found in the name decides
VERBS: dict[str, Operation] = {
    **dict.fromkeys(
        "create add new insert place book schedule register open submit post make upload "
        "generate start launch issue enroll reserve log record import".split(), "create"),
    **dict.fromkeys(
        "get fetch read retrieve show describe lookup view check inspect load detail "
        "download calculate compute estimate convert quote".split(), "read"),
    **dict.fromkeys("list search find query browse filter scan enumerate".split(), "list"),
    **dict.fromkeys(
        "update set edit modify change rename move assign patch adjust configure toggle "
        "enable disable mark tag attach link approve reject pause resume close archive cancel "
        "complete confirm publish activate deactivate restore".split(), "update"),
    **dict.fromkeys("delete remove destroy purge drop erase unregister revoke".split(), "delete"),
}

# update verbs that move a resource to a status instead of editing fields
STATUS_VERBS = {
    "cancel": "cancelled", "close": "closed", "archive": "archived", "approve": "approved",
    "reject": "rejected", "pause": "paused", "resume": "active", "complete": "completed",
    "confirm": "confirmed", "publish": "published", "activate": "active",
    "deactivate": "inactive", "enable": "enabled", "disable": "disabled", "restore": "active",
}

# a preposition ends the resource noun: get_user_by_email -> user, add_item_to_cart -> item
_CUT = {"by", "for", "from", "in", "on", "with", "at", "to", "into", "via", "per"}
_STOP = set("a an the by for of to from in on at with all my new current latest details info "
            "data v1 v2 api".split())
_PAGINATION = {"limit", "offset", "page", "page_size", "cursor", "max_results", "per_page", "sort",
               "sort_by", "order", "order_by", "dry_run", "validate_only", "fields", "include"}


@dataclass(frozen=True)
class ToolSemantics:
    """The inferred meaning of one tool."""

    tool_name: str
    operation: Operation
    verb: str  # the verb word found ("" when none)
    entity: str  # singular resource noun, e.g. "order"
    collection: str  # state key for resources of this entity, e.g. "orders"
    id_param: str | None  # argument that names the target resource
    status_value: str | None  # status an update verb moves the resource to
    field_params: tuple[str, ...]  # arguments that set resource fields (create / update)
    filter_params: tuple[str, ...]  # arguments that filter resources (list / read)
    required: tuple[str, ...]  # required arguments


def infer_semantics(name: str, description: str, parameters: dict[str, Any]) -> ToolSemantics:
    props = parameters.get("properties") or {}
    return _infer(name, description[:200], tuple(props), tuple(parameters.get("required") or ()))


@lru_cache(maxsize=65536)
def _infer(name: str, description: str, props: tuple[str, ...], required: tuple[str, ...]):
    words = split_words(name)
    verb_index = next((i for i, w in enumerate(words) if w in VERBS), None)
    if verb_index is None:  # no verb in the name: take it from the description's first word
        first = split_words(description)[:1]
        verb = first[0] if first and first[0] in VERBS else ""
        operation: Operation = VERBS.get(verb, "action") if verb else "action"
        nouns = words
    else:
        verb = words[verb_index]
        operation = VERBS[verb]
        nouns = words[verb_index + 1 :] or words[:verb_index]
    cut = next((i for i, w in enumerate(nouns) if w in _CUT), None)
    nouns = nouns[:cut] if cut else nouns
    nouns = [w for w in nouns if w not in _STOP and not w.isdigit()] or ["item"]
    entity = singular(nouns[-1])
    if operation == "read" and nouns[-1] != entity:  # a plural noun: "get_orders" lists
        operation = "list"
    id_param = _id_param(entity, props, foreign=operation in ("read", "update", "delete", "action"))
    if operation == "read" and id_param is None and any(p in _PAGINATION for p in props):
        operation = "list"
    fields = tuple(p for p in props if p != id_param and p not in _PAGINATION)
    return ToolSemantics(
        tool_name=name,
        operation=operation,
        verb=verb,
        entity=entity,
        collection=plural(entity),
        id_param=id_param,
        status_value=STATUS_VERBS.get(verb) if operation == "update" else None,
        field_params=fields if operation in ("create", "update", "action") else (),
        filter_params=fields if operation in ("list", "read") else (),
        required=required,
    )


def _id_param(entity: str, props: tuple[str, ...], foreign: bool) -> str | None:
    """The argument naming the target: '<entity>_id', 'id', … and, for operations on one
    existing resource (``foreign``), a lone '*_id' argument (``delete_user_account(user_id)``)."""
    for candidate in (f"{entity}_id", f"{entity}id", "id", f"{entity}_name", f"{entity}_key"):
        if candidate in props:
            return candidate
    ids = [p for p in props if p.endswith("_id") or p.endswith("Id")]
    return ids[0] if foreign and len(ids) == 1 else None


@lru_cache(maxsize=65536)
def label(name: str) -> str:
    """A tool, entity or parameter name as words a request or an answer can use:
    'customer_email' → 'customer email'."""
    return " ".join(split_words(name)) or name
