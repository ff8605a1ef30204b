"""Answer extraction and equivalence: equivalent forms pass, hedges and near misses fail."""

from __future__ import annotations

import threading

import pytest

from kimi_pipeline.gym.answers import equivalent, extract_answer, extract_final_answer


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("so the result is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),  # nested braces
        ("first \\boxed{5}, checked again: \\boxed{ 5 }", "5"),  # repeats of one answer are fine
        ("work...\nAnswer: 42", "42"),
        ("**Final Answer:** 12", "12"),
        ("Thus the final answer is $7$.", "$7$"),
        ("<answer>HELLO WORLD</answer>", "HELLO WORLD"),
        ("<answer>3</answer> though \\boxed{4} was a draft", "3"),  # tags win over boxes
    ],
)
def test_extracts_the_final_answer(response, expected):
    assert extract_final_answer(response) == expected


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("\\boxed{5} or maybe \\boxed{6}", "ambiguous"),
        ("<answer>1</answer><answer>2</answer><answer>3</answer>", "ambiguous"),
        ("I computed it carefully and it comes out to 5 in the end, I think.", "no final answer"),
        ("\\boxed{\\frac{1}{2}", "no final answer"),  # unbalanced brace
        ("\\boxed{}", "empty"),
        ("", "empty response"),
        (None, "empty response"),
        (12345, "empty response"),
        ("x" * 300_000, "longer than"),
    ],
)
def test_missing_or_ambiguous_answers_are_none_with_reason(response, reason):
    answer, why = extract_answer(response)
    assert answer is None
    assert reason in why


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("1/2", "\\frac{1}{2}"),
        ("1/2", "0.5"),
        ("0.5", "\\dfrac12"),
        ("-1/2", "-\\frac{1}{2}"),
        ("1000", "1,000"),
        ("1500", "1.5 \\times 10^{3}"),
        ("1500", "1.5e3"),
        ("25%", "0.25"),
        ("0.25", "25\\%"),
        ("5", "x = 5"),
        ("5", "$5$"),
        ("5", "\\text{5}."),
        ("12", "12 dollars"),
        ("(3, -2)", "x = 3, y = -2"),
        ("\\sqrt{2}", "2^{1/2}"),  # needs math-verify
        ("2", "\\sqrt{4}"),
        ("x^2+2x+1", "(x+1)^2"),
        ("\\frac{\\sqrt{3}}{2}", "\\sin(\\pi/3)"),
    ],
)
def test_equivalent_forms_pass(gold, answer):
    ok, why = equivalent(gold, answer)
    assert ok, why


@pytest.mark.parametrize(
    ("gold", "answer", "reason"),
    [
        ("5", "6", "numeric mismatch"),
        ("1/3", "0.333", "numeric mismatch"),
        ("5", "5 or 6", "hedged"),
        ("5", "5, 6", "2 value(s)"),
        ("5", "\\{5, 6\\}", "2 value(s)"),
        ("56", "5 6", ""),
        ("(3, -2)", "(-2, 3)", "mismatch"),
        ("\\sqrt{2}", "\\sqrt{3}", "math-verify"),
        ("7", "7" * 501, "longer than"),
        ("7", "", "empty"),
        ("7", None, "empty"),
        ("7", "\\frac{1}{0}", ""),
        ("0", "0x", "variable"),  # math-verify alone reads 0x as 0*x = 0
        ("5", "5 \\\\ 6", "hedged"),  # a LaTeX line break between candidates
        ("3", "9^{9^{9^{9}}}", "too costly"),
        ("3", "3^{100000000}", "too costly"),
        ("3", "100000!", "too costly"),
        ("5", "5y/y", "variable"),
        ("7", "}{\\frac{{{", ""),
    ],
)
def test_wrong_or_malformed_answers_fail_with_reason(gold, answer, reason):
    ok, why = equivalent(gold, answer)
    assert not ok
    assert reason in why and why


def test_unordered_lists_accept_any_order_only_when_asked():
    assert equivalent("-3, 2", "2, -3", unordered=True)[0]
    assert not equivalent("-3, 2", "2, -3")[0]
    assert not equivalent("-3, 2", "2, 3", unordered=True)[0]


def test_math_verify_path_works_outside_the_main_thread():
    results = []
    worker = threading.Thread(target=lambda: results.append(equivalent("\\sqrt{8}", "2\\sqrt{2}")))
    worker.start()
    worker.join()
    assert results[0][0], results
