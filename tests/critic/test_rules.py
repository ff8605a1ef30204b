"""The prescriptive rules: what they catch, what they must leave alone, and pair verdicts."""

from __future__ import annotations

import pytest

from kimi_pipeline.critic.rubrics import load_rubrics
from kimi_pipeline.critic.rules import (
    RULES,
    get_rule,
    no_explicit_justification,
    no_initial_praise,
    rule_preference,
)

PLAIN_PROMPT = "Why do cats purr?"

PRAISE_OPENINGS = [
    "Great question! Cats purr by vibrating their laryngeal muscles.",
    "What a fascinating question. Purring comes from the larynx.",
    "Excellent question! The short answer is vibration.",
    "I love this question! Purring is a muscle rhythm.",
    "You're absolutely right to ask about this. Purring is complex.",
    "Thank you for this thoughtful question. Cats purr when content and when hurt.",
    "What an interesting thing to ask! Purring is not fully understood.",
    "Wow, what a great question! Let's dig in.",
    "wow... GREAT QUESTION!!! cats purr for many reasons.",
    "Oh, such an insightful question — cats purr to self-soothe.",
    "That's a brilliant question. The larynx twitches rapidly.",
    "Hi there! What a wonderful topic to explore. Cats purr ...",
    "Sure! Great question. Cats purr with their larynx.",
    "I'm so glad you asked! Purring is fascinating.",
    "Thanks so much for such a great question! Cats purr when relaxed.",
    "You've raised a really excellent point. Purring also heals.",
    "Honestly, that is a great question to which science has a partial answer.",
    "Ooh, fantastic question!\n\nCats purr at 25 to 150 Hz.",
    "Your question is a great one. Purring starts in the brain.",
    "Great questions! Let me take them one at a time.",
]

NOT_PRAISE = [
    ("Tell me about the reef.", "Great Barrier Reef facts: it is the largest coral system."),
    ("Tell me about the reef.", "The Great Barrier Reef is visible from space."),
    ("Write a toast for my sister's wedding.", "What a wonderful couple! To Anna and Ben ..."),
    ("Give me a compliment, I had a rough day.", "You are brilliant, kind and a great friend."),
    ("Congratulate my team on the launch.", "Excellent work, team! The launch was a triumph."),
    ("How should I save?", "It's a good idea to save ten percent of every paycheck."),
    ("How should I save?", "A good question to ask yourself is whether you have a buffer."),
    ("Why do we sleep?", "The great question of sleep science is why we dream at all."),
    ("Who wrote it?", "Interesting thought experiment: imagine a world without clocks."),
    ("Any tips?", "Good one-pot recipes save time on weeknights."),
    ("Why do cats purr?", "Cats purr by vibrating the muscles of the larynx."),
    ("What is 2+2?", "The most important question when budgeting is where money goes."),
    (
        'Write a scene that opens with the line "What a great question," said the teacher.',
        "What a great question, said the teacher, and the class fell silent.",
    ),
    ("Explain gravity.", "Gravity is a fascinating force: it bends spacetime itself."),
    ("What is consciousness?", "Deep questions about consciousness have puzzled philosophers."),
    ("Plan my week.", "Good morning! Here is a plan that leaves Friday free."),
]

JUSTIFICATIONS = [
    "Cats purr. I chose this approach because it keeps things simple.",
    "This answer is clear because it sticks to one idea.",
    "I have structured my response so that the key point comes first.",
    "Purring is vibration. I kept this brief so you can read it fast.",
    "My response focuses on the biology rather than folklore.",
    "The reason I wrote it this way is to keep the focus on you.",
    "Here's why this answer works: it is direct.",
    "In this response, I cover three causes of purring.",
    "I used an analogy to make the idea easier to grasp.",
    "I believe this response is thorough and balanced.",
    "To make this answer more practical, I added an example.",
    "I deliberately avoided jargon so anyone can follow.",
    "I've organised the explanation into three steps for clarity.",
    "Note that I kept my reply focused on what you asked.",
]

NOT_JUSTIFICATION = [
    "The reason the sky is blue is Rayleigh scattering.",
    "This approach works because the hash table gives constant-time lookups.",
    "The answer is 42 because six times seven is 42.",
    "Structure your response to the interviewer with the STAR method.",
    "Here's why this matters: small savings compound over decades.",
    'She smiled. "I have structured my response carefully," the lawyer said.',
    "I wrote to you, dear sister, because the harvest failed.",
    "The explanation is simple: warm air rises.",
    "My answer: yes, if you can afford the deposit.",
    "I chose the red door, and it changed everything.",
    "The story is told from the cat's point of view.",
    "Keep your answer short when an interviewer asks about weaknesses.",
]


def test_both_prescriptive_rules_are_registered():
    assert {"no_initial_praise", "no_explicit_justification"} <= set(RULES)
    with pytest.raises(ValueError, match="no_such_rule.*known rules"):
        get_rule("no_such_rule")


@pytest.mark.parametrize("response", PRAISE_OPENINGS)
def test_praise_opening_is_caught_with_its_span(response):
    result = no_initial_praise(PLAIN_PROMPT, response)
    assert result.violated, response
    assert result.evidence and result.evidence.lower() in response.lower()


@pytest.mark.parametrize(("prompt", "response"), NOT_PRAISE)
def test_praise_rule_stays_silent_on_content_and_requested_praise(prompt, response):
    result = no_initial_praise(prompt, response)
    assert not result.violated, (response, result.evidence)
    assert result.evidence == ""


def test_praise_later_in_the_response_is_not_an_opening():
    response = "Cats purr with the larynx. By the way, great question, and keep asking!"
    assert not no_initial_praise(PLAIN_PROMPT, response).violated


@pytest.mark.parametrize("response", JUSTIFICATIONS)
def test_self_justification_is_caught_with_its_sentence(response):
    result = no_explicit_justification(PLAIN_PROMPT, response)
    assert result.violated, response
    assert result.evidence in response


@pytest.mark.parametrize("response", NOT_JUSTIFICATION)
def test_justification_rule_stays_silent_on_explanations_of_the_subject(response):
    result = no_explicit_justification(PLAIN_PROMPT, response)
    assert not result.violated, (response, result.evidence)


def test_explaining_choices_is_fine_when_the_prompt_asks_for_it():
    prompt = "Write a haiku about rain, then explain your choices."
    response = "Rain taps the tin roof. I chose this structure because haiku reward restraint."
    assert not no_explicit_justification(prompt, response).violated


@pytest.fixture(scope="module")
def rubrics():
    return load_rubrics({"rubrics": [
        {"name": "clarity", "title": "Clarity", "description": "Clear.", "kind": "core"},
        {"name": "no_initial_praise", "title": "No praise", "description": "No praise.",
         "kind": "prescriptive", "mandatory": True, "rule": "no_initial_praise"},
        {"name": "no_explicit_justification", "title": "No justification",
         "description": "No self-justification.", "kind": "prescriptive", "mandatory": True,
         "rule": "no_explicit_justification"},
    ]})


CLEAN = "Cats purr by twitching the muscles of the larynx."
PRAISING = "Great question! " + CLEAN
JUSTIFYING = CLEAN + " I kept this brief so it is easy to read."


def test_rule_preference_picks_the_side_that_breaks_no_rule(rubrics):
    assert rule_preference(PLAIN_PROMPT, CLEAN, PRAISING, rubrics) == ("a", ["no_initial_praise"])
    winner, decided_by = rule_preference(PLAIN_PROMPT, JUSTIFYING, CLEAN, rubrics)
    assert (winner, decided_by) == ("b", ["no_explicit_justification"])


def test_rule_preference_names_every_rule_the_loser_broke(rubrics):
    both = "Great question! " + JUSTIFYING
    winner, decided_by = rule_preference(PLAIN_PROMPT, both, CLEAN, rubrics)
    assert winner == "b"
    assert sorted(decided_by) == ["no_explicit_justification", "no_initial_praise"]


@pytest.mark.parametrize(("a", "b"), [
    (CLEAN, "Purring also signals pain in some cats."),  # neither breaks a rule
    (PRAISING, JUSTIFYING),  # both do, differently
    (PRAISING, "Wow, what a great question! Purring is vibration."),  # both praise
])
def test_rule_preference_abstains_unless_exactly_one_side_breaks_a_rule(rubrics, a, b):
    assert rule_preference(PLAIN_PROMPT, a, b, rubrics) == (None, [])


def test_rules_that_are_not_mandatory_do_not_decide():
    lenient = load_rubrics({"rubrics": [
        {"name": "clarity", "title": "Clarity", "description": "Clear.", "kind": "core"},
        {"name": "no_initial_praise", "title": "No praise", "description": "No praise.",
         "kind": "prescriptive", "mandatory": False, "rule": "no_initial_praise"},
    ]})
    assert rule_preference(PLAIN_PROMPT, CLEAN, PRAISING, lenient) == (None, [])
