"""Pairwise judging with hand-written judges: both orders in one batch, the tie rule and
contradictions, shortcuts, abstentions, agreement metrics, win rates and Bradley-Terry."""

import math

import pytest

from kimi_pipeline.critic.pairwise import (
    CANDIDATE_SCORERS,
    Judgement,
    PairOutcome,
    PairQuery,
    agreement,
    bradley_terry,
    candidate_pairs,
    candidate_rewards,
    combine,
    judge_both_orders,
    position_bias_rate,
    tally,
    win_rates,
)


class Recording:
    """Base of the test judges: records every batch it is asked."""

    def __init__(self):
        self.batches: list[list[PairQuery]] = []

    def judge(self, queries):
        self.batches.append(list(queries))
        return [self.one(q) for q in queries]


class Longer(Recording):
    """Prefers the longer text; per rubric: 'length' the same, 'first' always the first shown."""

    def one(self, q):
        p = 0.9 if len(q.first) > len(q.second) else 0.1 if len(q.first) < len(q.second) else 0.5
        return Judgement(p, {"length": p, "first": 0.8}, f"len {len(q.first)} vs {len(q.second)}")


class FirstShown(Recording):
    """Always prefers whatever is shown first: pure position bias."""

    def one(self, q):
        return Judgement(0.8, {}, "first looks better")


class Abstains(Recording):
    def one(self, q):
        return Judgement(None, {}, "unusable reply")


class Fixed(Recording):
    """Returns the given p_first for the a-first query and the other for the b-first one."""

    def __init__(self, forward, backward):
        super().__init__()
        self.p = {True: forward, False: backward}

    def one(self, q):
        return Judgement(self.p[q.first == "alpha"], {}, "")


def item(a, b, rubrics=("length", "first")):
    return ("Write a poem.", a, b, rubrics, "creative")


def outcome(winner, contradiction=False):
    return PairOutcome(winner, contradiction, 0.5, None, None, "hand-made")


# --------------------------------------------------------------------------- both orders


def test_every_pair_is_judged_in_both_orders_in_one_batch():
    judge = Longer()
    outcomes = judge_both_orders(judge, [item("aaa", "b"), item("a", "bbb"), item("aa", "bb")])
    assert len(judge.batches) == 1 and len(judge.batches[0]) == 6
    forward, backward = judge.batches[0][0], judge.batches[0][1]
    assert (forward.first, forward.second) == ("aaa", "b")
    assert (backward.first, backward.second) == ("b", "aaa")
    assert forward.rubrics == ("length", "first") and forward.context == "creative"
    assert [o.winner for o in outcomes] == ["a", "b", "tie"]
    assert not any(o.contradiction for o in outcomes)
    assert outcomes[0].p_a == pytest.approx(0.9) and outcomes[1].p_a == pytest.approx(0.1)
    assert outcomes[0].forward.reason == "len 3 vs 1" and outcomes[0].backward.p_first == 0.1
    assert "a preferred in both orders" in outcomes[0].reason


def test_per_rubric_verdicts_follow_the_same_rule():
    (o,) = judge_both_orders(Longer(), [item("aaa", "b")])
    # 'length' agrees in both orders; 'first' prefers the first-shown answer both times
    assert o.per_rubric == {"length": "a", "first": "tie"}


def test_position_bias_makes_every_pair_a_contradiction():
    outcomes = judge_both_orders(FirstShown(), [item("x", "yy"), item("yy", "x"), item("p", "q")])
    assert all(o.winner == "tie" and o.contradiction for o in outcomes)
    assert all(o.p_a == pytest.approx(0.5) for o in outcomes)
    assert "first-shown response was preferred both times" in outcomes[0].reason
    assert position_bias_rate(outcomes) == 1.0
    assert position_bias_rate(judge_both_orders(Longer(), [item("x", "yy")])) == 0.0


def test_bias_rate_leaves_out_shortcuts_and_abstentions():
    outcomes = judge_both_orders(FirstShown(), [item("x", "yy"), item("same", " same "),
                                                item("", "y")])
    outcomes += judge_both_orders(Abstains(), [item("x", "yy")])
    assert [o.contradiction for o in outcomes] == [True, False, False, False]
    assert position_bias_rate(outcomes) == 1.0  # 1 contradiction among 1 pair judged
    assert position_bias_rate([]) == 0.0


@pytest.mark.parametrize(
    "forward, backward, winner, contradiction",
    [
        (0.9, 0.2, "a", False),  # both orders prefer a
        (0.3, 0.7, "b", False),  # both prefer b
        (0.9, 0.5, "tie", False),  # the b-first order is undecided
        (0.5, 0.5, "tie", False),
        (0.9, 0.9, "tie", True),  # first position both times
        (0.1, 0.1, "tie", True),  # second position both times
    ],
)
def test_tie_rule(forward, backward, winner, contradiction):
    (o,) = judge_both_orders(Fixed(forward, backward), [item("alpha", "beta")])
    assert (o.winner, o.contradiction) == (winner, contradiction)
    assert o.p_a == pytest.approx((forward + 1 - backward) / 2)


def test_margin_turns_weak_preferences_into_ties():
    judge = Fixed(0.55, 0.45)
    assert judge_both_orders(judge, [item("alpha", "beta")])[0].winner == "a"
    (o,) = judge_both_orders(judge, [item("alpha", "beta")], margin=0.1)
    assert (o.winner, o.contradiction) == ("tie", False)
    assert combine(0.65, 0.35, 0.1) == ("a", False)
    with pytest.raises(ValueError, match="margin"):
        judge_both_orders(judge, [item("alpha", "beta")], margin=0.5)


# ----------------------------------------------------------------------------- shortcuts


@pytest.mark.parametrize(
    "a, b, winner, why",
    [
        ("Roses are red.", "  Roses are\n red. ", "tie", "identical responses"),
        ("", "a poem", "b", "response a is empty"),
        ("a poem", " \n\t", "a", "response b is empty"),
        ("", "   ", "tie", "both responses are empty"),
    ],
)
def test_shortcuts_never_call_the_judge(a, b, winner, why):
    judge = Longer()
    (o,) = judge_both_orders(judge, [item(a, b)])
    assert judge.batches == []
    assert (o.winner, o.reason, o.contradiction) == (winner, why, False)
    assert o.forward is None and o.backward is None and not o.judged
    assert o.per_rubric == {"length": winner, "first": winner}
    assert o.p_a == {"a": 1.0, "b": 0.0, "tie": 0.5}[winner]


def test_only_the_pairs_that_need_it_reach_the_judge():
    judge = Longer()
    outcomes = judge_both_orders(judge, [item("", "x"), item("aaa", "b"), item("z", "z")])
    assert [(q.first, q.second) for q in judge.batches[0]] == [("aaa", "b"), ("b", "aaa")]
    assert [o.winner for o in outcomes] == ["b", "a", "tie"]


def test_abstaining_judge_gives_a_tie_with_its_reason():
    (o,) = judge_both_orders(Abstains(), [item("x", "yy")])
    assert (o.winner, o.contradiction, o.p_a) == ("tie", False, 0.5)
    assert "judge abstained: unusable reply" in o.reason
    assert o.per_rubric == {"length": "tie", "first": "tie"}


def test_out_of_range_probability_is_an_abstention():
    (o,) = judge_both_orders(Fixed(1.7, math.nan), [item("alpha", "beta")])
    assert o.winner == "tie" and "not a probability" in o.reason


def test_a_judge_returning_the_wrong_number_of_judgements_is_refused():
    class Short(Recording):
        def judge(self, queries):
            return [Judgement(0.9, {}, "")]

    with pytest.raises(ValueError, match="1 judgements for 2 queries"):
        judge_both_orders(Short(), [item("x", "yy")])


# ------------------------------------------------------------------------------- metrics


def test_agreement_counts_ties_as_half_credit():
    outcomes = [outcome("a"), outcome("b"), outcome("tie"), outcome("a")]
    got = agreement(outcomes, ["a", "a", "b", "a"])
    assert got == {"accuracy": 0.625, "strict_accuracy": 0.5, "tie_rate": 0.25, "n": 4}
    assert agreement([], [])["n"] == 0
    with pytest.raises(ValueError):
        agreement(outcomes, ["a"])


# ---------------------------------------------------------------------------- K rewards


def test_win_rates_on_a_hand_computed_example():
    comparisons = [(0, 1, outcome("a")), (0, 2, outcome("tie")), (1, 2, outcome("b"))]
    # 0: win + tie of 2 = 0.75; 1: two losses = 0; 2: tie + win of 2 = 0.75; 3 never compared
    assert win_rates(4, comparisons) == [0.75, 0.0, 0.75, 0.5]
    rows = tally(4, comparisons)
    assert rows[0] == dict(wins=1, losses=0, ties=1, contradictions=0, compared=2)
    assert rows[1] == dict(wins=0, losses=2, ties=0, contradictions=0, compared=2)
    with pytest.raises(ValueError, match="distinct"):
        win_rates(2, [(0, 0, outcome("a"))])


def test_bradley_terry_orders_a_transitive_example_like_win_rates():
    # 0 > 1 > 2 > 3, with one upset of 1 by 2
    comparisons = [(0, 1, outcome("a")), (0, 2, outcome("a")), (0, 3, outcome("a")),
                   (1, 2, outcome("a")), (1, 2, outcome("b")), (1, 3, outcome("a")),
                   (2, 3, outcome("a")), (1, 2, outcome("a"))]
    wr, bt = win_rates(4, comparisons), bradley_terry(4, comparisons)
    assert sorted(range(4), key=lambda i: -wr[i]) == [0, 1, 2, 3]
    assert sorted(range(4), key=lambda i: -bt[i]) == [0, 1, 2, 3]
    assert all(0 < s < 1 for s in bt)


def test_bradley_terry_of_one_game_is_symmetric():
    a, b = bradley_terry(2, [(0, 1, outcome("a"))])
    assert a > 0.5 > b and a + b == pytest.approx(1.0)


def test_bradley_terry_is_stable_on_all_ties_and_a_dominant_candidate():
    ties = [(i, j, outcome("tie")) for i, j in candidate_pairs(4)] * 3
    assert bradley_terry(4, ties) == pytest.approx([0.5] * 4)
    assert bradley_terry(3, []) == pytest.approx([0.5] * 3)
    dominant = [(0, j, outcome("a")) for j in (1, 2)] * 20 + [(1, 2, outcome("tie"))]
    scores = bradley_terry(3, dominant, iterations=1000)
    assert all(math.isfinite(s) for s in scores)
    assert 0.9 < scores[0] < 1.0 and scores[1] == pytest.approx(scores[2]) and scores[1] < 0.5
    with pytest.raises(ValueError, match="prior"):
        bradley_terry(3, dominant, prior=0)


def test_candidate_rewards_judges_all_pairs_in_one_batch():
    judge = Longer()
    candidates = ["x", "xxx", "xx", "xxxx"]
    scores, outcomes = candidate_rewards(judge, "Write.", candidates, ["length"], "creative")
    assert len(judge.batches) == 1 and len(judge.batches[0]) == 12  # 6 pairs x 2 orders
    assert scores == pytest.approx([0.0, 2 / 3, 1 / 3, 1.0])
    assert [o.winner for o in outcomes] == ["b", "b", "b", "a", "b", "b"]
    bt, _ = candidate_rewards(Longer(), "Write.", candidates, ["length"], method="bradley_terry")
    assert sorted(range(4), key=lambda i: bt[i]) == [0, 2, 1, 3]


def test_candidate_rewards_edge_cases():
    judge = Longer()
    assert candidate_rewards(judge, "p", ["only"], []) == ([0.5], [])
    assert candidate_rewards(judge, "p", [], []) == ([], [])
    assert judge.batches == []
    scores, _ = candidate_rewards(FirstShown(), "p", ["a", "bb", "ccc"], [])
    assert scores == [0.5, 0.5, 0.5]  # pure position bias decides nothing
    with pytest.raises(ValueError, match="known: \\['bradley_terry', 'win_rate'\\]"):
        candidate_rewards(judge, "p", ["a", "b"], [], method="elo")
    assert set(CANDIDATE_SCORERS) == {"win_rate", "bradley_terry"}
