"""The one set of English rules for tool names (task writer, world model, taxonomy, evolver)."""

from __future__ import annotations

import pytest

from kimi_pipeline.text import plural, singular, split_words


@pytest.mark.parametrize("one, many", [
    ("order", "orders"), ("category", "categories"), ("day", "days"), ("address", "addresses"),
    ("box", "boxes"), ("match", "matches"), ("wish", "wishes"), ("quiz", "quizes"),
    ("series", "series"), ("news", "news"), ("fx_order", "fx_orders"), ("sku", "skus"),
    ("menu", "menus"),
])
def test_plural_and_singular_invert_each_other(one, many):
    assert plural(one) == many
    if one != "quiz":  # the plural rule is regular, English is not
        assert singular(many) == one


@pytest.mark.parametrize("word", ["status", "order_status", "analysis", "class", "series",
                                  "data"])
def test_singular_leaves_words_that_only_look_plural(word):
    assert singular(word) == word


def test_identifiers_split_into_lower_case_words():
    assert split_words("getOrderStatus") == ["get", "order", "status"]
    assert split_words("list-open_tickets.v2") == ["list", "open", "tickets", "v2"]
