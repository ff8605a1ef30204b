"""Faithfulness: answer a question from a given context; every claim must be supported by it.

What it does
------------
Tasks come from :data:`PASSAGES`, short factual passages about invented places, people and
things (so the policy cannot answer from world knowledge), each with questions whose key facts
the passage states. Level 1 asks for one fact, level 2 for two facts from different sentences,
level 3 asks either kind with a second, unrelated passage in the context as a distractor.

Verification, FACTS-Grounding style (K2 report §3.2): the answer is split into sentences and
each sentence that makes a claim must be supported by the context; the unsupported ones are
reported in ``details["unsupported"]`` with why. The answer must also contain every gold key
fact, and must not be a dump of the context (see below). Reward 1 only if all hold.

The support scorer, and why
---------------------------
An answer sentence is cut into clauses at ``;`` / ``and`` / ``, but`` (so "founded in 1742 and
home to 3,400 people" is two claims, each needing its own support, and numbers cannot be
mixed across facts). A claim is *supported* by a window of the context (one sentence, or two
adjacent ones) when

1. its content words (stopwords and meta words like "passage" dropped, crude stems) are
   covered by the window at ≥ ``coverage`` (0.7), and
2. every number in the claim (digits or number words, ``1,200`` = ``1200``) occurs in the
   window, and every named entity (a capitalised word not starting the sentence, or a known
   context entity) occurs in the window or in an earlier context sentence (the passage says
   "It" or "The beetle" for the name it introduced before), and
3. the claim and the window agree in polarity (both or neither contain a negation).

Rules 2–3 are hard: they catch the classic hallucinations — a changed number or name, an
inverted statement — which an embedding similarity scores as near-identical. Rule 1 is a
cheap lexical entailment proxy that handles the common case (answers reuse the context's
words) at tens of thousands of checks per second in pure Python. Only a claim that passes 2–3
but covers between ``floor`` (0.4) and 0.7 of its words, i.e. a likely paraphrase, goes to
the optional MiniLM fallback (``embedder="minilm"``, lazy-loaded, batched per response, window
embeddings cached per context): it is supported when its cosine to such a window is
≥ ``cosine`` (0.75). Without an embedder those claims are unsupported (conservative).
Known limits: a paraphrase with < 40 % word overlap is unsupported, and an invented name at
the very start of a sentence is left to the coverage rule. A ``with_judge(backend)`` copy of
the domain asks an LLM judge (role ``faithfulness_judge``, through the shared LLM-judge core
``judge.llm_judge``) instead; the role's offline program (``gym.offline.faithfulness_judge``)
is this scorer.

Copy of the whole context
-------------------------
A response that reproduces most of the context verbatim (≥ 4 context sentences, or ≥ 3 and at
least half of them) scores 0 even though every sentence is "supported" and the key fact is in
it: it does not answer the question, and rewarding it would teach the policy to dump the
context — the easiest hack of a support-only verifier.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from kimi_pipeline.gym.prose import STOPWORDS, split_sentences, stem, words
from kimi_pipeline.gym.registry import Domain, Verification, register_domain
from kimi_pipeline.judge import llm_judge
from kimi_pipeline.judge.llm_judge import Abstain
from kimi_pipeline.llm.base import ChatBackend, ChatRequest
from kimi_pipeline.records import GymTask

JUDGE_ROLE = "faithfulness_judge"

META_WORDS = frozenset(
    "context passage text according states stated mentions mentioned says said answer question "
    "based given provided article".split()
)
NEGATIONS = frozenset("not no never none neither nor without cannot".split())
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "dozen": "12"})
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CLAUSE = re.compile(r"\s*(?:;|,?\s+and|,\s*but|,\s*while|,\s*whereas)\s+", re.I)


# -------------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Question:
    text: str
    key_facts: tuple[str, ...]  # every one must appear in the answer
    gold: str  # a faithful reference answer


@dataclass(frozen=True)
class Passage:
    title: str
    text: str
    questions: tuple[Question, ...]  # [0]: one fact (level 1); [1]: two facts (level 2)

    @property
    def sentences(self) -> list[str]:
        return split_sentences(self.text)


def _q(text: str, facts: str, gold: str) -> Question:
    return Question(text, tuple(facts.split("|")), gold)


PASSAGES: tuple[Passage, ...] = (
    Passage("Varnholm", "Varnholm is a fishing town on the northern shore of Lake Ostra. The town was founded in 1742 by the merchant Elsa Brandt. Its harbour holds 64 wooden boats. Every August, Varnholm hosts the Lantern Regatta on the lake. The regatta was first held in 1911 after a storm destroyed the old pier. About 3,400 people live in the town today.", (
        _q("Who founded Varnholm?", "Elsa Brandt", "Varnholm was founded by the merchant Elsa Brandt."),
        _q("When was Varnholm founded and how many people live there today?", "1742|3,400", "Varnholm was founded in 1742, and about 3,400 people live there today."))),
    Passage("Kestrel Bridge", "The Kestrel Bridge crosses the Milla River at Dunmore. It was designed by the engineer Tomas Rieck. Construction began in 1887 and took six years. The bridge is 412 metres long and has nine stone arches. It was closed to cars in 1998 and is now used only by walkers and cyclists.", (
        _q("Who designed the Kestrel Bridge?", "Tomas Rieck", "The engineer Tomas Rieck designed the Kestrel Bridge."),
        _q("How long is the Kestrel Bridge and how many arches does it have?", "412|nine", "The bridge is 412 metres long and has nine stone arches."))),
    Passage("Orlen tea", "Orlen tea is grown on the terraces of the Sava Hills. The leaves are picked by hand twice a year, in April and in October. After picking, the leaves are smoked over juniper wood for two days. This gives the tea a sharp, resinous taste. The Sava Hills cooperative sells about 18 tonnes of Orlen tea each year.", (
        _q("Over which wood are Orlen tea leaves smoked?", "juniper", "The leaves are smoked over juniper wood."),
        _q("In which months are the leaves picked, and how much tea does the cooperative sell each year?", "April|October|18 tonnes", "The leaves are picked in April and in October, and the cooperative sells about 18 tonnes each year."))),
    Passage("Pellucid Observatory", "The Pellucid Observatory stands on Mount Harrow at 2,150 metres. It opened in 1964 with a single 1.2 metre telescope. In 1990 a second telescope with a 3.5 metre mirror was added. The observatory discovered the comet Harrow-Lind in 2003. It is run by the University of Calder and employs 27 staff.", (
        _q("Which comet did the observatory discover?", "Harrow-Lind", "The observatory discovered the comet Harrow-Lind."),
        _q("When did the observatory open and who runs it?", "1964|University of Calder", "It opened in 1964 and is run by the University of Calder."))),
    Passage("Brisco library", "The Brisco Public Library was built in 1923 with money from the weaver Agnes Moll. It holds about 48,000 books. The reading room has a glass ceiling painted with birds. The library lends bicycles as well as books. Children under twelve may borrow up to five books at a time.", (
        _q("Whose money paid for the Brisco Public Library?", "Agnes Moll", "It was built with money from the weaver Agnes Moll."),
        _q("How many books does the library hold, and what else does it lend?", "48,000|bicycles", "The library holds about 48,000 books and also lends bicycles."))),
    Passage("Quillfen marsh", "Quillfen Marsh covers 17 square kilometres south of the town of Aldby. It is home to the rare marsh harrier and to 140 species of moth. Peat was cut there until 1952. Since 1976 the marsh has been a nature reserve. A wooden boardwalk of 3 kilometres lets visitors cross the wettest part.", (
        _q("Since when has Quillfen Marsh been a nature reserve?", "1976", "Quillfen Marsh has been a nature reserve since 1976."),
        _q("How large is the marsh and how long is its boardwalk?", "17|3 kilometres", "The marsh covers 17 square kilometres, and a wooden boardwalk of 3 kilometres crosses its wettest part."))),
    Passage("Taverno clock", "The Taverno clock tower was finished in 1702. Its clock was made by the brothers Ilio and Marco Fenn. The clock strikes every quarter hour with four bells. The largest bell weighs 900 kilograms and is called Grossa. In 1911 lightning struck the tower, and the clock stopped for two years.", (
        _q("What is the name of the largest bell?", "Grossa", "The largest bell is called Grossa."),
        _q("Who made the clock and how much does the largest bell weigh?", "Fenn|900", "The clock was made by the brothers Ilio and Marco Fenn, and the largest bell weighs 900 kilograms."))),
    Passage("Amberline railway", "The Amberline is a narrow-gauge railway between Rotha and Kessel. It opened in 1879 to carry slate from the Kessel quarries. The line is 23 kilometres long and climbs 610 metres. Passenger trains were added in 1885. Today the railway is run by 200 volunteers and carries tourists from May to September.", (
        _q("What did the Amberline originally carry?", "slate", "It was opened to carry slate from the Kessel quarries."),
        _q("How long is the line and who runs it today?", "23|volunteers", "The line is 23 kilometres long and today it is run by 200 volunteers."))),
    Passage("Nimbus bakery", "The Nimbus Bakery in Corran opened in 1958. Its founder, Rosa Lindqvist, learned to bake in her grandmother's kitchen. The bakery is famous for a rye loaf flavoured with caraway and honey. It bakes around 700 loaves every morning. The ovens are heated with beech wood.", (
        _q("Who founded the Nimbus Bakery?", "Rosa Lindqvist", "The Nimbus Bakery was founded by Rosa Lindqvist."),
        _q("What is the bakery famous for and how many loaves does it bake each morning?", "rye|700", "It is famous for a rye loaf flavoured with caraway and honey and bakes around 700 loaves every morning."))),
    Passage("Isle of Cray", "The Isle of Cray lies 14 kilometres off the western coast. It has no cars and no airport. A ferry from Port Aske reaches the island twice a day. The island's 260 residents farm sheep and gather seaweed. Its white lighthouse was built in 1834 by Hugh Carrow.", (
        _q("Who built the lighthouse on the Isle of Cray?", "Hugh Carrow", "The lighthouse was built by Hugh Carrow."),
        _q("How far off the coast is the island and how many people live there?", "14|260", "The island lies 14 kilometres off the western coast and has 260 residents."))),
    Passage("Velta violin", "The Velta violin was made in 1791 by the luthier Paolo Sarne. Its back is carved from a single piece of maple. The violin was lost during a flood in 1844 and found again in a church attic in 1902. It is now owned by the Ormond Conservatory. Students play it once a year at the spring concert.", (
        _q("Where was the Velta violin found again?", "church attic", "It was found again in a church attic in 1902."),
        _q("Who made the violin and who owns it now?", "Paolo Sarne|Ormond Conservatory", "The violin was made by the luthier Paolo Sarne and is now owned by the Ormond Conservatory."))),
    Passage("Glimmer caves", "The Glimmer Caves were discovered in 1932 by two shepherds from Tarsk. The caves stretch for 5.6 kilometres under the Berro plateau. Their walls are covered with calcite crystals that shine in lamplight. The temperature inside stays at 9 degrees all year. Guided tours run every hour from April to October.", (
        _q("Who discovered the Glimmer Caves?", "shepherds", "The caves were discovered by two shepherds from Tarsk."),
        _q("How long are the caves and what is the temperature inside?", "5.6|9 degrees", "The caves stretch for 5.6 kilometres and the temperature inside stays at 9 degrees."))),
    Passage("Ferrow market", "The Ferrow Saturday market has been held in the town square since 1613. About 85 stalls sell cheese, wool, honey and tools. The market bell is rung at seven in the morning to open trading. In 2009 the council banned plastic bags at the market. The most famous stall sells goat cheese wrapped in chestnut leaves.", (
        _q("Since when has the Ferrow market been held?", "1613", "The market has been held in the town square since 1613."),
        _q("How many stalls are there and what did the council ban in 2009?", "85|plastic bags", "About 85 stalls trade there, and in 2009 the council banned plastic bags at the market."))),
    Passage("Solberg dam", "The Solberg Dam was completed in 1968 on the Ruen River. It is 96 metres high. The dam's power station produces electricity for about 40,000 homes. Its reservoir, Lake Solberg, flooded the old village of Hennet. Divers sometimes visit the church tower of Hennet under the water.", (
        _q("Which village did the reservoir flood?", "Hennet", "The reservoir flooded the old village of Hennet."),
        _q("When was the dam completed and how many homes does it supply?", "1968|40,000", "The dam was completed in 1968, and its power station produces electricity for about 40,000 homes."))),
    Passage("Marro beetle", "The Marro beetle lives only in the pine forests of the Ostvale valley. It is about 2 centimetres long and has a copper-green shell. The beetle feeds on pine resin. Females lay around 30 eggs in dead wood each summer. The species was first described in 1899 by the naturalist Ida Vehr.", (
        _q("What does the Marro beetle feed on?", "resin", "The Marro beetle feeds on pine resin."),
        _q("Who first described the beetle and how many eggs do females lay?", "Ida Vehr|30", "The naturalist Ida Vehr first described it, and females lay around 30 eggs each summer."))),
    Passage("Halden choir", "The Halden Miners' Choir was formed in 1921 by workers of the Halden coal pit. It has 46 singers. The choir sings without instruments. It won the national choir prize in 1958 and again in 1983. The pit closed in 1971, but the choir still rehearses every Thursday.", (
        _q("On which day does the choir rehearse?", "Thursday", "The choir rehearses every Thursday."),
        _q("How many singers does the choir have and when did it win the national prize?", "46|1958|1983", "The choir has 46 singers and won the national choir prize in 1958 and in 1983."))),
)


# ------------------------------------------------------------------------- claim analysis


def numbers(text: str) -> frozenset[str]:
    found = {n.replace(",", "") for n in _NUMBER.findall(text)}
    found |= {NUMBER_WORDS[w.lower()] for w in words(text) if w.lower() in NUMBER_WORDS}
    return frozenset(found)


def _content(tokens: list[str]) -> frozenset[str]:
    return frozenset(
        stem(t) for t in tokens
        if t.lower() not in STOPWORDS and t.lower() not in META_WORDS
        and not t[0].isdigit() and t.lower() not in NUMBER_WORDS
    )


def _negated(tokens: list[str]) -> bool:
    return any(t.lower() in NEGATIONS or t.lower().endswith(("n't", "n’t")) for t in tokens)


@dataclass(frozen=True)
class Window:
    """One or two adjacent context sentences, analysed once per context."""

    text: str
    content: frozenset[str]
    all_stems: frozenset[str]
    numbers: frozenset[str]
    negated: bool
    earlier_entities: frozenset[str]  # names of earlier context sentences: 'It' may refer to them


@dataclass(frozen=True)
class ContextIndex:
    sentences: tuple[str, ...]
    windows: tuple[Window, ...]
    entities: frozenset[str]  # lowercased words written capitalised mid-sentence in the context
    sentence_content: tuple[frozenset[str], ...]


def _window(sentences: tuple[str, ...], start: int, size: int) -> Window:
    text = " ".join(sentences[start:start + size])
    tokens = words(text)
    earlier = frozenset(stem(t) for s in sentences[:start] for t in words(s) if t[0].isupper())
    return Window(text, _content(tokens), frozenset(stem(t) for t in tokens), numbers(text),
                  _negated(tokens), earlier)


@lru_cache(maxsize=4096)
def context_index(sentences: tuple[str, ...]) -> ContextIndex:
    spans = [(i, 1) for i in range(len(sentences))] + [(i, 2) for i in range(len(sentences) - 1)]
    entities = {t.lower() for s in sentences for t in words(s)[1:] if t[0].isupper()}
    return ContextIndex(sentences, tuple(_window(sentences, i, k) for i, k in spans),
                        frozenset(entities), tuple(_content(words(s)) for s in sentences))


@dataclass
class Claim:
    text: str  # the clause checked
    sentence: str  # the answer sentence it comes from
    content: frozenset[str]
    numbers: frozenset[str]
    entities: frozenset[str]
    negated: bool


def claims_of(sentence: str, index: ContextIndex) -> list[Claim]:
    """The sentence's clauses that say something (content words or numbers)."""
    found = [claim(part, sentence, index) for part in _CLAUSE.split(sentence) if part.strip()]
    return [c for c in found if c.content or c.numbers]


def claim(text: str, sentence: str, index: ContextIndex) -> Claim:
    tokens = words(text)
    entities = {
        stem(t) for i, t in enumerate(tokens)
        if t[0].isupper() and t.lower() not in STOPWORDS and t.lower() not in META_WORDS
        and (i > 0 or t.lower() in index.entities)
    }
    return Claim(text, sentence, _content(tokens), numbers(text), frozenset(entities), _negated(tokens))


def coverage(c: Claim, w: Window) -> float:
    return len(c.content & w.content) / len(c.content) if c.content else 1.0


def hard_mismatch(c: Claim, w: Window) -> str:
    """Why ``w`` cannot support ``c`` whatever the wording ('' when it can)."""
    missing_numbers = sorted(c.numbers - w.numbers)
    if missing_numbers:
        return f"numbers {missing_numbers} not in the context sentence"
    missing_entities = sorted(c.entities - w.all_stems - w.earlier_entities)
    if missing_entities:
        return f"names {missing_entities} not in the context sentence"
    if c.negated != w.negated:
        return "negation does not match the context sentence"
    return ""


# ------------------------------------------------------------------------ paraphrase scorer


class EmbeddingFallback:
    """MiniLM cosine for likely paraphrases; window embeddings cached per context (LRU)."""

    def __init__(self, name: str, cache_size: int = 512):
        self.name = name
        self.cache: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()
        self.cache_size = cache_size
        self._embedder = None

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._embedder is None:
            from kimi_pipeline.tools.embed import make_embedder

            self._embedder = make_embedder(self.name)
        return np.asarray(self._embedder.encode(texts), dtype=np.float32)

    def window_vectors(self, index: ContextIndex) -> np.ndarray:
        if index.sentences not in self.cache:
            self.cache[index.sentences] = self._encode([w.text for w in index.windows])
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        self.cache.move_to_end(index.sentences)
        return self.cache[index.sentences]

    def best(self, index: ContextIndex, claims: list[Claim], candidates: list[list[int]]) -> list[float]:
        """Per claim, the highest cosine to one of its candidate windows (one batch)."""
        windows = self.window_vectors(index)
        vectors = self._encode([c.text for c in claims])
        sims = vectors @ windows.T
        return [float(sims[i, idx].max()) for i, idx in enumerate(candidates)]


# ---------------------------------------------------------------------------------- domain


def _report(c: Claim, reason: str) -> dict[str, str]:
    return {"sentence": c.sentence, "claim": c.text, "reason": reason}


def normalise(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())
    return " ".join(re.sub(r"[^\w.\-]+", " ", text).split())


def _fact_present(fact: str, answer_norm: str, answer_numbers: frozenset[str]) -> bool:
    norm = normalise(fact)
    if norm in answer_norm:
        return True
    fact_numbers = numbers(fact)
    return bool(fact_numbers) and fact_numbers <= answer_numbers


@register_domain("faithfulness")
class Faithfulness(Domain):
    description = "Answer a question from a context; every sentence must be supported by it."
    levels = (1, 2, 3)
    judge_role = JUDGE_ROLE

    def __init__(self, embedder: str | None = "minilm", coverage: float = 0.7,
                 floor: float = 0.4, cosine: float = 0.75):
        self.coverage, self.floor, self.cosine = coverage, floor, cosine
        self.fallback = EmbeddingFallback(embedder) if embedder else None

    # ------------------------------------------------------------------ generation
    def generate(self, rng: random.Random, n: int, difficulty: int) -> list[GymTask]:
        return [self._task(rng, difficulty) for _ in range(n)]

    def _task(self, rng: random.Random, difficulty: int) -> GymTask:
        passage = rng.choice(PASSAGES)
        question = passage.questions[0 if difficulty == 1 else 1 if difficulty == 2 else rng.randrange(2)]
        sentences = passage.sentences
        if difficulty >= 3:
            other = rng.choice([p for p in PASSAGES if p is not passage])
            sentences = sentences + other.sentences if rng.random() < 0.5 else other.sentences + sentences
        context = " ".join(sentences)
        prompt = (
            "Answer the question using only the context below. Every sentence of your answer must "
            f"be supported by the context.\n\nContext:\n{context}\n\nQuestion: {question.text}"
        )
        return GymTask(
            task_id=f"faithfulness-{difficulty}-{rng.getrandbits(48):012x}",
            domain=self.name, prompt=prompt, answer=question.gold,
            tags=["faithfulness", passage.title], difficulty=difficulty,
            metadata={"context_sentences": sentences, "question": question.text,
                      "key_facts": list(question.key_facts), "passage": passage.title},
        )

    # ---------------------------------------------------------------- verification
    def verify(self, task: GymTask, response: str) -> Verification:
        sentences, facts = task.metadata.get("context_sentences"), task.metadata.get("key_facts")
        if not isinstance(sentences, list) or not sentences or not isinstance(facts, list):
            return Verification(0.0, "malformed task: needs context_sentences and key_facts")
        if not isinstance(response, str) or not response.strip():
            return Verification(0.0, "empty response", {"unsupported": []})
        index = context_index(tuple(map(str, sentences)))
        answer_sentences = split_sentences(response)
        claims = [c for s in answer_sentences for c in claims_of(s, index)]
        if not claims:
            return Verification(0.0, "response makes no claim", {"unsupported": []})
        if self.judge_backend is None:
            unsupported = self.unsupported(index, claims)
        else:
            unsupported = judge_support(self.judge_backend, list(map(str, sentences)),
                                        answer_sentences)
            if isinstance(unsupported, Abstain):
                return Verification(0.0, f"judge reply unusable: {unsupported.reason}",
                                    {"unsupported": []})
        missing = self._missing_facts(response, facts)
        copied = self._copied(index, answer_sentences)
        details = {"unsupported": unsupported, "missing_facts": missing, "claims": len(claims),
                   "copied_context_sentences": copied}
        problems = []
        if unsupported:
            problems.append(f"{len(unsupported)} of {len(claims)} sentences unsupported: "
                            + "; ".join(f"{u['claim'][:80]!r} ({u['reason']})" for u in unsupported))
        if missing:
            problems.append(f"does not state the key facts {missing}")
        if copied >= 4 or (copied >= 3 and copied * 2 >= len(index.sentences)):
            problems.append(f"copies {copied} context sentences instead of answering")
        if problems:
            return Verification(0.0, "; ".join(problems), details)
        return Verification(1.0, f"all {len(claims)} claims supported and the key facts stated", details)

    def unsupported(self, index: ContextIndex, claims: list[Claim]) -> list[dict[str, str]]:
        """The claims no context window supports, each with the reason of its best window."""
        out: list[dict[str, str]] = []
        gray: list[tuple[Claim, list[int], str]] = []
        for c in claims:
            verdict, candidates, reason = self._lexical(index, c)
            if verdict:
                continue
            if candidates and self.fallback is not None:
                gray.append((c, candidates, reason))
            else:
                out.append(_report(c, reason))
        if gray:
            out.extend(self._paraphrase(index, gray))
        return out

    def _lexical(self, index: ContextIndex, c: Claim) -> tuple[bool, list[int], str]:
        """(supported, windows worth a paraphrase check, reason if not)."""
        best_cov, reason, candidates = -1.0, "no context sentence shares its words", []
        for i, w in enumerate(index.windows):
            cov = coverage(c, w)
            mismatch = hard_mismatch(c, w) if cov >= self.floor else ""
            if cov >= self.floor and not mismatch:
                if cov >= self.coverage:
                    return True, [], ""
                candidates.append(i)
            if cov > best_cov:
                best_cov = cov
                reason = mismatch or f"only {cov:.0%} of its content words are in the closest context sentence"
        return False, candidates, reason

    def _paraphrase(self, index: ContextIndex, gray: list[tuple[Claim, list[int], str]]) -> list[dict[str, str]]:
        try:
            sims = self.fallback.best(index, [c for c, _, _ in gray], [cand for _, cand, _ in gray])
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            return [_report(c, f"{r}; paraphrase scorer unavailable: {exc}") for c, _, r in gray]
        return [
            _report(c, f"{r}; paraphrase cosine {s:.2f} < {self.cosine}")
            for (c, _, r), s in zip(gray, sims) if s < self.cosine
        ]

    @staticmethod
    def _missing_facts(response: str, facts: list[Any]) -> list[str]:
        norm, nums = normalise(response), numbers(response)
        return [str(f) for f in facts if not _fact_present(str(f), norm, nums)]

    @staticmethod
    def _copied(index: ContextIndex, answer_sentences: list[str]) -> int:
        """Context sentences reproduced almost verbatim (≥ 90 % of their content words)."""
        said = [_content(words(s)) for s in answer_sentences]
        covered = 0
        for content in index.sentence_content:
            if content and any(len(content & c) >= 0.9 * len(content) for c in said):
                covered += 1
        return covered


# ------------------------------------------------------------------------- the LLM judge


JUDGE_SYSTEM = (
    "You check whether an answer is faithful to a context. For every numbered answer sentence, "
    "decide whether the context supports all of it: every fact, number, name and negation must "
    'be stated in the context. Reply with JSON only: {"sentences": [{"index": n, '
    '"supported": true or false, "reason": "..."}]}.'
)


def judge_request(context_sentences: list[str], answer_sentences: list[str]) -> ChatRequest:
    """The judge's request: the context and the numbered answer sentences."""
    numbered = llm_judge.criteria_block((s, "") for s in answer_sentences)
    return llm_judge.json_request(
        JUDGE_ROLE, JUDGE_SYSTEM,
        f"Context:\n{' '.join(context_sentences)}\n\nAnswer sentences:\n{numbered}",
        {"context_sentences": context_sentences, "answer_sentences": answer_sentences},
        temperature=0.0)


def judge_support(backend: ChatBackend, context_sentences: list[str],
                  answer_sentences: list[str]) -> list[dict[str, str]] | Abstain:
    """Answer sentences the judge finds unsupported (one it gives no verdict on included),
    or ``Abstain`` with why its reply is unusable."""
    [reply] = llm_judge.ask(backend, [judge_request(context_sentences, answer_sentences)])
    indices = range(1, len(answer_sentences) + 1)
    verdicts = llm_judge.verdicts_of(reply, indices, items="sentences", name="index",
                                     ok="supported")
    if isinstance(verdicts, Abstain):
        return verdicts
    judged = [verdicts.get(str(i), (False, "judge gave no verdict")) for i in indices]
    return [{"sentence": s, "claim": s, "reason": why or "judged unsupported"}
            for s, (ok, why) in zip(answer_sentences, judged) if not ok]
