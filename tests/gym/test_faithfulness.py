"""Faithfulness: the corpus, task generation, the sentence-level support scorer on faithful,
hallucinated and adversarial answers (changed number, invented sentence, swapped name,
negation, context dump, empty), the MiniLM paraphrase fallback, and speed."""

from __future__ import annotations

import random
import time

import pytest

from kimi_pipeline.gym import faithfulness as fa
from kimi_pipeline.gym.registry import get_domain
from kimi_pipeline.records import GymTask

LEXICAL = fa.Faithfulness(embedder=None)
VARNHOLM = fa.PASSAGES[0]


def task(passage=VARNHOLM, level=0) -> GymTask:
    question = passage.questions[level]
    return GymTask(
        task_id="f-1", domain="faithfulness", prompt=question.text, answer=question.gold,
        metadata={"context_sentences": passage.sentences, "question": question.text,
                  "key_facts": list(question.key_facts)},
    )


def test_corpus_has_enough_varied_passages():
    assert len(fa.PASSAGES) >= 15
    assert len({p.title for p in fa.PASSAGES}) == len(fa.PASSAGES)
    for p in fa.PASSAGES:
        assert 4 <= len(p.sentences) <= 8, p.title
        assert len(p.questions) == 2


@pytest.mark.parametrize("passage", fa.PASSAGES, ids=[p.title for p in fa.PASSAGES])
def test_gold_answers_score_one_and_context_dumps_score_zero(passage):
    for level in (0, 1):
        v = LEXICAL.verify(task(passage, level), passage.questions[level].gold)
        assert v.reward == 1.0, v.reason
    dump = LEXICAL.verify(task(passage), " ".join(passage.sentences))
    assert dump.reward == 0.0 and "copies" in dump.reason
    assert dump.details["unsupported"] == []  # every copied sentence is supported, still not an answer


@pytest.mark.parametrize("level", [1, 2, 3])
def test_generated_tasks_are_seeded_and_their_gold_passes(level):
    domain = get_domain("faithfulness")
    tasks = domain.generate(random.Random(5), 25, level)
    assert tasks == domain.generate(random.Random(5), 25, level)
    for t in tasks:
        back = GymTask.from_json(t.to_json())
        assert back.metadata["question"] in back.prompt
        assert LEXICAL.verify(back, back.answer).reward == 1.0
        if level == 3:
            passage = next(p for p in fa.PASSAGES if p.title == t.metadata["passage"])
            assert len(t.metadata["context_sentences"]) > len(passage.sentences)  # a distractor


def test_changed_number_is_zero_and_reported():
    v = LEXICAL.verify(task(VARNHOLM, 1), "Varnholm was founded in 1752, and about 3,400 people live there today.")
    assert v.reward == 0.0
    [bad] = v.details["unsupported"]
    assert "1752" in bad["claim"] and "1752" in bad["reason"]


def test_extra_invented_sentence_is_zero():
    answer = VARNHOLM.questions[0].gold + " She also built the town's first school."
    v = LEXICAL.verify(task(), answer)
    assert v.reward == 0.0
    assert [u["sentence"] for u in v.details["unsupported"]] == ["She also built the town's first school."]


def test_swapped_name_is_zero():
    v = LEXICAL.verify(task(), "Varnholm was founded by the merchant Elsa Rieck.")
    assert v.reward == 0.0 and "rieck" in v.details["unsupported"][0]["reason"]


def test_negated_claim_is_zero():
    v = LEXICAL.verify(task(), "Varnholm was not founded by the merchant Elsa Brandt.")
    assert v.reward == 0.0 and "negation" in v.details["unsupported"][0]["reason"]


def test_lexical_paraphrase_and_meta_phrasing_score_one():
    v = LEXICAL.verify(task(), "According to the passage, Elsa Brandt, a merchant, founded Varnholm.")
    assert v.reward == 1.0, v.reason
    numbers = LEXICAL.verify(task(VARNHOLM, 1), "The town was founded in 1742. Roughly 3400 people live in it today.")
    assert numbers.reward == 1.0, numbers.reason


def test_faithful_answer_without_the_key_fact_is_zero():
    v = LEXICAL.verify(task(), "Varnholm is a fishing town on the northern shore of Lake Ostra.")
    assert v.reward == 0.0 and v.details["missing_facts"] == ["Elsa Brandt"]
    assert v.details["unsupported"] == []


@pytest.mark.parametrize("response", ["", "  ", None, 3.5, "...", "According to the passage:"])
def test_empty_or_claimless_answer_is_zero_with_reason(response):
    v = LEXICAL.verify(task(), response)
    assert v.reward == 0.0 and v.reason in ("empty response", "response makes no claim")


def test_malformed_task_is_zero_with_reason():
    v = LEXICAL.verify(GymTask(task_id="x", domain="faithfulness", prompt="q"), "An answer.")
    assert v.reward == 0.0 and v.reason.startswith("malformed task")


def test_minilm_fallback_accepts_a_paraphrase_the_lexical_scorer_cannot():
    bakery = next(p for p in fa.PASSAGES if p.title == "Nimbus bakery")
    t = task(bakery).model_copy(update={"metadata": {**task(bakery).metadata, "key_facts": ["700"]}})
    answer = "Every morning the bakery produces roughly 700 loaves."
    lexical = LEXICAL.verify(t, answer)
    assert lexical.reward == 0.0 and lexical.details["unsupported"]
    embedded = fa.Faithfulness(embedder="minilm")
    assert embedded.verify(t, answer).reward == 1.0
    wrong = embedded.verify(t, "Every morning the bakery produces roughly 900 loaves.")
    assert wrong.reward == 0.0 and "900" in wrong.details["unsupported"][0]["reason"]
    assert len(embedded.fallback.cache) == 1  # window vectors computed once for this context


def test_lexical_batch_verdicts_and_rate():
    tasks = get_domain("faithfulness").generate(random.Random(2), 300, 3)
    pairs = [(t, t.answer) for t in tasks] + [(t, t.answer + " It was painted red in 1990.") for t in tasks]
    start = time.perf_counter()
    results = LEXICAL.verify_many(pairs)
    rate = len(pairs) / (time.perf_counter() - start)
    assert [r.reward for r in results] == [1.0] * len(tasks) + [0.0] * len(tasks)
    print(f"\n{rate:,.0f} faithfulness checks/s")


class UnparseableJudgeDouble:
    """Test double for an LLM judge that answers prose instead of JSON."""

    name = "double"

    async def acomplete(self, request):
        from kimi_pipeline.llm.base import ChatResponse

        return ChatResponse(content="The answer looks fine to me.")


def test_llm_judge_path_offline_agrees_with_the_scorer_and_bad_replies_score_zero():
    from kimi_pipeline.gym.faithfulness import Faithfulness
    from kimi_pipeline.llm import make_backend

    scorer = Faithfulness(embedder=None)
    judged = scorer.with_judge(make_backend({"kind": "offline"}))
    import random as _random

    task = scorer.generate(_random.Random(3), 1, 1)[0]
    sentences = task.metadata["context_sentences"]
    answers = [task.answer, sentences[0] + " It was founded in 1234 by aliens.", ""]
    rewards = [scorer.verify(task, answer).reward for answer in answers]
    assert rewards == [1.0, 0.0, 0.0]
    assert [judged.verify(task, answer).reward for answer in answers] == rewards
    result = scorer.with_judge(UnparseableJudgeDouble()).verify(task, task.answer)
    assert result.reward == 0.0 and "judge reply unusable: reply is not JSON" in result.reason
    assert scorer.judge_backend is None
