"""The one set of English rules for tool names (task writer, world model, taxonomy, evolver)."""

from __future__ import annotations

import pytest

from kimi_pipeline.text import says_cannot, plural, singular, split_words


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


@pytest.mark.parametrize("answer", [
    "I can't do that: there is no tool for refunds.", "I'm unable to cancel it.",
    "We cannot change a past booking.", "That is not supported by these tools.",
    "Sorry, this is outside my scope.", "There are no tools to send faxes.",
])
def test_answers_that_decline_are_recognised(answer):
    assert says_cannot(answer)


@pytest.mark.parametrize("answer", [
    "Done: order O-12 is cancelled.", "I can do that. Which order?",
    "The refund is possible once the item is returned.",
])
def test_answers_that_act_or_ask_are_not_read_as_declining(answer):
    assert not says_cannot(answer)
