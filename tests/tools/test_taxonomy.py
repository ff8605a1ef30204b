"""The taxonomy: sizes, uniqueness, typed attributes and the DSL's type inference."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator

from kimi_pipeline.tools.taxonomy import (
    all_tool_domains,
    category_by_slug,
    domain_by_slug,
    humanize,
    load_taxonomy,
)

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
FORMATS = {None, "date-time", "date", "email", "uri", "uuid", "ipv4"}


def _attr(domain: str, entity: str, name: str):
    ent = next(e for e in domain_by_slug(domain).entities if e.name == entity)
    return next(a for a in ent.attributes if a.name == name)


def test_sizes():
    categories = load_taxonomy()
    assert len(categories) >= 24
    assert all(len(c.domains) >= 10 for c in categories)
    assert len(all_tool_domains()) >= 240
    for required in ("financial_trading", "software_applications", "robot_control", "healthcare"):
        assert category_by_slug(required).domains


def test_slugs_unique_and_snake_case():
    categories = load_taxonomy()
    assert len({c.slug for c in categories}) == len(categories)
    slugs = [d.slug for d in all_tool_domains()]
    assert len(set(slugs)) == len(slugs)
    assert all(SNAKE.match(s) for s in slugs + [c.slug for c in categories])


def test_descriptions_are_one_informative_sentence():
    for item in [*load_taxonomy(), *all_tool_domains()]:
        text = item.description
        assert text.endswith(".") and ". " not in text, item.slug
        assert len(text.split()) >= 6, item.slug


def test_entities_and_attributes_within_bounds():
    for domain in all_tool_domains():
        assert 2 <= len(domain.entities) <= 4, domain.slug
        names = [e.name for e in domain.entities]
        assert len(set(names)) == len(names), domain.slug
        for entity in domain.entities:
            assert SNAKE.match(entity.name)
            assert 3 <= len(entity.attributes) <= 7, (domain.slug, entity.name)
            attr_names = [a.name for a in entity.attributes]
            assert len(set(attr_names)) == len(attr_names), (domain.slug, entity.name)


def test_every_attribute_renders_a_valid_typed_schema():
    for domain in all_tool_domains():
        for entity in domain.entities:
            for attr in entity.attributes:
                assert attr.json_type in JSON_TYPES and attr.format in FORMATS
                assert attr.description.endswith(".")
                Draft202012Validator.check_schema(attr.schema())


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (("equity_trading", "position", "opened_at"), {"type": "string", "format": "date-time"}),
        (("patient_scheduling", "waitlist_entry", "added_at"), {"format": "date-time"}),
        (("payment_processing", "payment_intent", "customer_email"), {"format": "email"}),
        (("warehouse_robots", "mobile_robot", "battery_pct"),
         {"type": "number", "minimum": 0, "maximum": 100}),
        (("equity_trading", "order", "side"), {"type": "string", "enum": ["buy", "sell"]}),
        (("forex_trading", "fx_order", "leverage"), {"type": "integer", "minimum": 1, "maximum": 500}),
        (("equity_trading", "order", "symbol"), {"pattern": r"^[A-Z0-9.]{1,12}$"}),
        (("compute_instances", "instance", "image_id"), {"format": "uuid"}),
        (("email_client", "email_message", "is_read"), {"type": "boolean"}),
    ],
)
def test_type_inference_and_explicit_types(where, expected):
    schema = _attr(*where).schema()
    assert {k: schema[k] for k in expected} == expected


def test_nested_objects_and_arrays():
    legs = _attr("options_trading", "option_strategy", "legs").schema()
    assert legs["type"] == "array" and legs["items"]["type"] == "object"
    assert set(legs["items"]["properties"]) == {"contract_type", "strike_price", "quantity"}
    assert legs["items"]["required"] == ["contract_type", "strike_price", "quantity"]
    address = _attr("e_prescribing", "pharmacy", "address").schema()
    assert address["type"] == "object" and "city" in address["properties"]
    symbols = _attr("equity_trading", "watchlist", "symbols").schema()
    assert symbols["items"]["pattern"] == r"^[A-Z0-9.]{1,12}$"  # item type inferred from the singular
    classes = _attr("intellectual_property", "trademark", "nice_classes").schema()
    assert classes["items"]["type"] == "integer"


def test_cached_and_lookup_errors():
    assert load_taxonomy() is load_taxonomy()
    assert domain_by_slug("equity_trading").category == "financial_trading"
    with pytest.raises(KeyError, match="nope"):
        domain_by_slug("nope")


def test_humanize_keeps_acronyms():
    assert humanize("ev_charging_network") == "EV charging network"
    assert humanize("equity_trading") == "Equity trading"
