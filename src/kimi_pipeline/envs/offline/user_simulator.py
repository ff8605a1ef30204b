"""The offline program of the ``user_simulator`` role: a deterministic user, from the context.

The user simulator (``envs.user_sim``) sends each turn as a ``user_simulator`` request whose
context holds the persona, the request (in the parts the episode's script asks one per turn),
the private details, whether a refusal is acceptable, the follow-up, the seed, the turn index
and the visible dialogue. Without a model, this program writes the user's next message from
that context alone, deterministically from the seed and the turn index: it opens with the
persona-shaped request (``shaped_request``; the changes-mind persona opens with a variant,
``variant_request``, and corrects it next), answers a question with exactly the private details
asked for (``asked_fields``) or says it does not know, confirms, nudges, asks for the next part
once the agent has answered, follows up or pushes back once, and ends with ``###STOP###`` and a
reason when it is served, refused, let down or out of patience. Personas change how things are
said (``_LINES`` per persona), never what is true.

The offline path is hot (tens of thousands of turns per run), so all patterns are compiled once
and a turn is a few regex searches.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from kimi_pipeline.envs.user_sim import ROLE, STOP, spoken_value
from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.llm.offline import offline_role
from kimi_pipeline.text import says_cannot, split_words

MAX_QUESTION_STREAK = 2  # the impatient user leaves when the agent asks more questions in a row


# ----------------------------------------------------------------------------------- phrasings
# persona -> kind of line -> variants; {request} is the persona-shaped request (the part asked
# last, when the user asks one part per turn), {full} the same as written, {variant} the
# changed-mind opening, {facts} the answered details, {part} the next part asked for.

_DEFAULT_LINES: dict[str, tuple[str, ...]] = {"restate": ("To be clear: {request}",)}

_LINES: dict[str, dict[str, tuple[str, ...]]] = {
    "terse": {
        "open": ("{request}", "{request} pls", "{request}, thx"),
        "answer": ("{facts}.", "{facts}"),
        "unknown": ("don't know.", "no idea. doesn't matter.", "n/a"),
        "confirm": ("yes.", "yep, go.", "ok"),
        "nudge": ("and?", "ok, go.", "so?"),
        "restate": ("{request}.", "like i said: {request}"),
        "next": ("ok. now {part}", "next: {part}", "thx. also {part}"),
        "follow_up": ("what changed exactly?", "recap w/ ids?"),
        "push_back": ("really? no way at all?", "sure there's nothing you can do?"),
    },
    "verbose": {
        "open": (
            "Hi there! I hope you're having a good day. So, here's my situation, and sorry in "
            "advance for the long message: {request} I've been meaning to sort this out for a "
            "while now and it has honestly been on my mind all week, so any help is really "
            "appreciated!",
            "Hello! Thanks so much for being here. I'll try to explain everything properly. "
            "{request} I know it might seem like a small thing, but it matters a lot to me, so "
            "please take your time and let me know how it goes.",
        ),
        "answer": (
            "Oh, of course, I should have mentioned that earlier: {facts}. Sorry about that! "
            "I hope that's everything you need from me.",
            "Sure thing! So, {facts}. I double-checked it just now to be safe.",
        ),
        "unknown": (
            "Hmm, honestly I'm not sure about that one; I don't think I have that information. "
            "Does it matter much? Please just use whatever makes the most sense.",
            "Oh, that's a good question, but I really don't know. I don't think it matters "
            "for what I need, to be honest.",
        ),
        "confirm": (
            "Yes, absolutely, please go ahead! Thank you so much for checking with me first.",
            "Yes, that sounds exactly right. Please go ahead with it.",
        ),
        "nudge": (
            "Okay, thank you! Please go ahead, and let me know once it's all sorted out.",
            "Alright, that sounds good. Take your time, just tell me when it's done.",
        ),
        "restate": ("Sorry if I wasn't clear! To put it another way: {request} Does that help?",),
        "next": (
            "Oh, that's wonderful, thank you so much! While I have you, there's one more thing "
            "I'd love help with, if it's not too much trouble: {part}",
            "Perfect, thank you! And now that that's sorted, the next thing on my list: {part} "
            "Sorry to pile on!",
        ),
        "follow_up": (
            "Oh, that's wonderful, thank you so much! Before I go, could you give me a quick "
            "summary of everything you did, with the ids, so I can note it down?",
            "Thank you! Just so I'm completely sure I understood: what exactly was done?",
        ),
        "push_back": (
            "Oh no, really? Are you completely sure there's no way at all? It would mean a lot "
            "to me.",
        ),
    },
    "vague": {
        "open": (
            "hey, um, so I need some help with something... {request} you know what I mean?",
            "hi. it's about... {request} something like that.",
            "so, uh, {request} can you sort that out?",
        ),
        "answer": ("oh, um, I think {facts}.", "uh, {facts}, I guess."),
        "unknown": ("dunno, whatever works.", "hm, not sure. doesn't really matter."),
        "confirm": ("yeah, sure, I guess.", "um, yes."),
        "nudge": ("ok... so is it done?", "mm, ok."),
        "restate": ("oh, right, sorry, I mean: {full}", "ah, yeah, specifically: {full}"),
        "next": ("ok, um, and then... {part}", "oh, and, uh, {part}"),
        "follow_up": ("oh, ok... so, um, what did you end up doing exactly?",),
        "push_back": ("oh. um, are you sure? there's no way?",),
    },
    "impatient": {
        "open": (
            "{request} Quickly, please, I don't have all day.",
            "I need this done now: {request} Hurry up.",
            "{request} And be fast, this is urgent.",
        ),
        "answer": ("Fine: {facts}. Now get on with it.", "It's {facts}. Can we move on?"),
        "unknown": ("I don't know and it doesn't matter. Just do it.",
                    "No idea, irrelevant. Hurry up."),
        "confirm": ("Yes! Go already.", "Yes, obviously. Do it."),
        "nudge": ("Well? Is it done yet?", "Come on, what's taking so long?"),
        "restate": ("I already told you: {request}",),
        "next": ("Fine. Next: {part} Quickly.", "Good. Now {part} Hurry."),
        "follow_up": ("Is it actually done? Give me the short version.",
                      "Fine. Summarise what you did, ids included."),
        "push_back": ("Seriously? There must be some way. Try harder.",),
    },
    "non_native": {
        "open": (
            "Hello. Please you help me with this: {request} Thank you very much.",
            "Hi, I am need help. {request} Is possible?",
            "Good day. {request} This you can do for me?",
        ),
        "answer": ("Ah, sorry, I forget to say: {facts}.",
                   "Yes. For you the information: {facts}."),
        "unknown": ("This I do not know. Is not important, I think.",
                    "I am not knowing this. Is no matter."),
        "confirm": ("Yes, please do this.", "Yes, is correct. Go ahead please."),
        "nudge": ("Okay. Please you continue.", "Is finish now?"),
        "restate": ("Sorry, my English not so good. I want: {request}",),
        "next": ("Thank you. Now also this: {part}", "Good, thank you. Next I need: {part}"),
        "follow_up": ("Thank you. Please you can say again what is done?",),
        "push_back": ("Really is not possible? No other way?",),
    },
    "changes_mind": {
        "open": ("{variant}", "Hi! {variant}", "Hey. {variant}"),
        "correct": (
            "Actually, wait, I changed my mind. What I really need is this: {request}",
            "Hmm, no, sorry, scratch that. Here's what I actually want: {request}",
        ),
        "next": ("Nice. Oh, and one more thing: {part}", "Cool. Hmm, next, {part}"),
        "follow_up": ("Great! Hmm, just so I'm sure: what exactly did you do in the end?",),
        "push_back": ("Hmm, are you sure? Maybe there's another way?",),
        "answer": ("Oh, {facts}. That part I'm sure about.", "Right: {facts}. Yes, that I know."),
        "unknown": ("Hmm, I don't know... it doesn't matter, I guess.",
                    "Not sure. Whatever, it doesn't matter."),
        "confirm": ("Yes, go ahead. That's final.", "Yes, do that."),
        "nudge": ("Okay, go ahead.", "Alright, let's do it."),
    },
    "polite_formal": {
        "open": (
            "Good afternoon. I would be most grateful for your assistance with the following "
            "matter. {request} Thank you kindly for your help.",
            "Dear assistant, I hope this message finds you well. {request} I appreciate your "
            "time.",
        ),
        "answer": ("Certainly: {facts}. Please let me know should you require anything further.",
                   "Of course: {facts}. Thank you for asking."),
        "unknown": ("I am afraid I do not have that information. Please proceed as you see fit; "
                    "it does not matter to me.",
                    "My apologies, I do not know. I trust it is not essential."),
        "confirm": ("Yes, please proceed. Thank you.", "That is correct; kindly go ahead."),
        "nudge": ("Thank you. Please do proceed, and inform me once it is complete.",
                  "Very well. I shall await the outcome."),
        "restate": ("Allow me to clarify: {request}",),
        "next": ("Thank you kindly. I would also ask you to attend to the following: {part}",
                 "Much appreciated. Next, if you would: {part}"),
        "follow_up": ("Thank you. Could you kindly summarise what has been done, for my records?",),
        "push_back": ("I see. Are you quite certain there is no way to accomplish this?",),
    },
    "expert": {
        "open": (
            "{request} Just hit the relevant endpoint, no hand-holding needed.",
            "Quick one, via the API: {request} Idempotent retries are fine if the service flakes.",
            "{request} Chain the calls as needed, skip the preamble.",
        ),
        "answer": ("Params: {facts}.", "Full spec: {facts}. That's everything."),
        "unknown": ("N/A, not a required param. Use the default.",
                    "Don't have that; leave it unset."),
        "confirm": ("Affirmative, execute.", "Yes, commit it."),
        "nudge": ("ACK. Proceed.", "Go ahead, ping me with the result."),
        "restate": ("To be precise: {request}",),
        "next": ("ACK. Next op: {part}", "Good. Follow-up call: {part}"),
        "follow_up": ("Confirm the final state: which calls went through, with ids.",),
        "push_back": ("No endpoint for it at all? Check again.",),
    },
}

# persona -> (format of one detail, separator between details)
_FACT_FORMAT: dict[str, tuple[str, str]] = {
    "terse": ("{label}: {value}", ", "),
    "impatient": ("{label} {value}", ", "),
    "non_native": ("{label} is {value}", ", "),
    "expert": ("{name}={value}", ", "),
}
_DEFAULT_FACT_FORMAT = ("the {label} is {value}", " and ")


# ------------------------------------------------------------------------- shaping the request

_QUOTED = re.compile(r"(\"[^\"]*\"|'[^' ][^']*')")
_ID_OR_NUMBER = re.compile(r"\"[^\"]*\"|\S+@\S+\.\w+|\b[\w.-]*\d[\w.-]*\b")
_BARE_NUMBER = re.compile(r"(?<![\w.-])(\d+)(?![\w-]|\.\d)")
_PLEASANTRIES = re.compile(
    r"^(?:(?:hi|hello|hey)[,!.]?\s+)?(?:(?:could|can|would) you (?:please )?|please,? |"
    r"i(?:'d| would) like (?:you )?to |i (?:want|need) (?:you )?to )*", re.I)
_PLEASE = re.compile(r",?\s*\bplease\b,?", re.I)
_ARTICLES = re.compile(r"(?:^(?:The|An?) |\b(?:the|an?) )")


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text[-1:] in ".!?" else text + "."


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if first.isalpha() and first[1:].islower() else text


def _outside_quotes(transform: Callable[[str], str], text: str) -> str:
    parts = _QUOTED.split(text)  # odd indices are quoted spans, kept verbatim
    return "".join(p if i % 2 else transform(p) for i, p in enumerate(parts))


def _terse(request: str) -> str:
    text = _outside_quotes(lambda s: _PLEASE.sub("", s), _PLEASANTRIES.sub("", request.strip()))
    return _lower_first(text.strip().rstrip(".!"))


def _non_native(request: str) -> str:
    return _sentence(_outside_quotes(lambda s: _ARTICLES.sub("", s), request))


def _mask(match: re.Match) -> str:
    return "some" if match.group(0).isdigit() else "that one"


def _vague(request: str) -> str:
    return _lower_first(_sentence(_ID_OR_NUMBER.sub(_mask, request)))


_SHAPES: dict[str, Callable[[str], str]] = {"terse": _terse, "non_native": _non_native,
                                            "vague": _vague}


@lru_cache(maxsize=65536)
def shaped_request(persona: str, request: str) -> str:
    """The request as this persona words it (ids and values kept, except the vague persona's)."""
    return _SHAPES.get(persona, _sentence)(request)


@lru_cache(maxsize=65536)
def variant_request(request: str) -> str:
    """What the changes-mind persona first asks for: a number changed, or a looser ask."""
    match = _BARE_NUMBER.search(request)
    if match:
        bumped = str(int(match.group(1)) + 1)
        return _sentence(request[: match.start()] + bumped + request[match.end():])
    return f"Before anything else, what could you do about this: {_vague(request)}"


# ----------------------------------------------------------------- reading the agent's message

_COURTESY = re.compile(
    r"(?:is there )?anything else[^?.!]*[?.!]?"
    r"|(?:let me know|feel free)[^.?!]*\b(?:else|questions?|further)\b[^.?!]*[.?!]?"
    r"|(?:can|may) i help (?:you )?with anything[^?]*\?"
    r"|hope (?:this|that) helps[.!]?", re.I)
_ASK = re.compile(
    r"\?|\bplease (?:provide|tell|share|confirm|specify|send|give)\b"
    r"|\bcould you (?:provide|tell|share|confirm|specify|give)\b"
    r"|\bi(?:'ll| will)? need (?:your|the|to know)\b"
    r"|\blet me know (?:your|the|which|what|how|when|where)\b", re.I)
_RESULT = re.compile(
    r"\b(?:done|completed?|success(?:ful(?:ly)?)?|here (?:is|are)|has been|have been|is now|"
    r"are now|found|results?|updated|created|cancell?ed|deleted|removed|scheduled|booked|sent|"
    r"placed|confirmed|processed|added|total|returned)\b|\b[\w.-]*\d[\w.-]*\b", re.I)
_PROGRESS = re.compile(
    r"^\s*(?:ok(?:ay)?[,.!]?\s*)?(?:let me|i(?:['’]ll| will| am going to|['’]m going to)|"
    r"one moment|just a moment|working on|checking|give me)", re.I)
_CONFIRM = re.compile(
    r"\b(?:shall i|should i|do you want|would you like|can i proceed|may i proceed|"
    r"confirm|go ahead|proceed)\b", re.I)
_CLARIFY = re.compile(
    r"\b(?:more (?:details?|specific|information|info|context)|be more specific|what exactly|"
    r"clarify|elaborate|what do you mean|which one|which (?:item|resource|record))\b", re.I)


_WORD = re.compile(r"[a-z]{4,}")
_COMMON = set("what which when where your this that with from have will would could should "
              "please there their about does need want".split())


@lru_cache(maxsize=65536)
def request_words(request: str) -> frozenset[str]:
    """Content words of the request: a question using one is about the request itself."""
    return frozenset(_WORD.findall(request.lower())) - _COMMON


def _about_request(text: str, request: str) -> bool:
    words = request_words(request)
    return any(w in words for w in _WORD.findall(text.lower()))


def _plain(text: str) -> str:
    return _COURTESY.sub("", text)


def _asks(text: str) -> bool:
    return bool(_ASK.search(_plain(text)))


# ------------------------------------------------------------------- which detail is asked for

_GENERIC = {"id", "ids", "no", "num", "number", "code", "key", "value", "type", "name", "new"}
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "quantity": ("how many", "number of", "amount", "qty", "units"),
    "count": ("how many", "number of"),
    "amount": ("how much", "sum", "total"),
    "price": ("how much", "cost"),
    "date": ("when", "which day", "what day"),
    "time": ("when", "what time"),
    "email": ("e-mail", "mail"),
    "phone": ("telephone", "mobile"),
    "address": ("where", "location"),
    "location": ("where", "place"),
    "city": ("where", "which city"),
    "reason": ("why",),
    "name": ("called",),
    "id": ("identifier", "number", "reference"),
    "symbol": ("ticker",),
    "ticker": ("symbol",),
    "duration": ("how long",),
    "size": ("how big",),
    "currency": ("which currency",),
}


@lru_cache(maxsize=65536)
def field_pattern(name: str) -> re.Pattern:
    """Words an agent would use to ask for the field ``name`` (account_id → 'account', …)."""
    words = split_words(name)
    keys = [w for w in words if w not in _GENERIC] or words
    terms = {" ".join(words), *keys, *(w + "s" for w in keys)}
    terms.update(s for w in keys for s in _SYNONYMS.get(w, ()))
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b", re.I)


def asked_fields(text: str, hidden: dict[str, Any]) -> list[str]:
    return [name for name in hidden if field_pattern(name).search(text)]



def facts(persona: str, names: list[str], hidden: dict[str, Any]) -> str:
    fmt, sep = _FACT_FORMAT.get(persona, _DEFAULT_FACT_FORMAT)
    return sep.join(
        fmt.format(name=n, label=" ".join(split_words(n)), value=spoken_value(hidden[n]))
        for n in names)


# ------------------------------------------------------------------------- the offline program


@dataclass
class _Turn:
    """What the offline user knows when it writes one message."""

    persona: str
    parts: tuple[str, ...]  # the request as asked turn by turn (one part: all at once)
    hidden: dict[str, Any]
    refusal_ok: bool
    follow_up: bool
    turn: int
    rng: random.Random
    dialogue: list[dict[str, Any]]

    def say(self, kind: str, **values: str) -> str:
        lines = _LINES[self.persona].get(kind) or _DEFAULT_LINES[kind]
        return self.rng.choice(lines).format(
            request=shaped_request(self.persona, self.request), full=_sentence(self.request),
            **values)

    @property
    def asked(self) -> int:
        """Parts asked for so far: the opening asks for the first, each later one is said in
        a message after it."""
        later = [m["content"] for m in self.dialogue[1:] if m["role"] == "user"]
        count = 1
        for part in self.parts[1:]:
            if not any(shaped_request(self.persona, part) in text for text in later):
                break
            count += 1
        return count

    @property
    def request(self) -> str:
        """The part asked for last: what a restatement or a correction repeats."""
        return self.parts[self.asked - 1] if len(self.parts) > 1 else self.parts[0]

    @property
    def last_agent(self) -> str:
        return next((m["content"] for m in reversed(self.dialogue) if m["role"] == "assistant"), "")

    def question_streak(self) -> int:
        streak = 0
        for message in reversed(self.dialogue):
            if message["role"] != "assistant":
                continue
            if not _asks(message["content"]):
                break
            streak += 1
        return streak

    def request_said(self) -> bool:
        return any(m["role"] == "user" and self.request in m["content"] for m in self.dialogue)

    def once(self, kind: str) -> str | None:
        """A line of ``kind`` if the user has said none yet in this dialogue."""
        lines = _LINES[self.persona][kind]
        if any(m["role"] == "user" and m["content"] in lines for m in self.dialogue):
            return None
        return self.say(kind)


def _stop(reason: str) -> str:
    return f"{STOP} {reason}"


def _opening(t: _Turn) -> str:
    return t.say("open", variant=variant_request(t.parts[0]))


def _answer(t: _Turn, text: str) -> str:
    names = asked_fields(text, t.hidden)
    if names:
        shown = list(t.hidden) if t.persona == "expert" else names
        return t.say("answer", facts=facts(t.persona, shown, t.hidden))
    if t.persona == "vague" and not t.request_said() and (
            _CLARIFY.search(text) or _about_request(text, t.request)):
        return t.say("restate")
    if _CLARIFY.search(text):
        return t.say("restate")
    if _CONFIRM.search(text):
        return t.say("confirm")
    return t.say("unknown")


def _correction(t: _Turn, text: str) -> str:
    names = asked_fields(text, t.hidden) if _asks(text) else []
    extra = " " + t.say("answer", facts=facts(t.persona, names, t.hidden)) if names else ""
    return t.say("correct") + extra


def _served(t: _Turn) -> str:
    """The agent answered what was asked: ask for the next part, follow up once, or end."""
    if t.asked < len(t.parts):
        return t.say("next", part=shaped_request(t.persona, t.parts[t.asked]))
    return (t.follow_up and t.once("follow_up")) or _stop("satisfied")


def _refused(t: _Turn) -> str:
    if not t.refusal_ok:
        return _stop("agent_gave_up")
    return (t.follow_up and t.once("push_back")) or _stop("satisfied_with_refusal")


def _reply(t: _Turn) -> str:
    if t.turn == 0:
        return _opening(t)
    if t.persona == "changes_mind" and t.turn == 1:
        return _correction(t, t.last_agent)
    text = _plain(t.last_agent)
    asks = bool(_ASK.search(text))
    if says_cannot(text) and (t.refusal_ok or not asks):
        return _refused(t)
    if asks:
        if t.persona == "impatient" and t.question_streak() > MAX_QUESTION_STREAK:
            return _stop("user_gave_up")
        return _answer(t, text)
    if _RESULT.search(text) and not _PROGRESS.match(text):
        return _served(t)
    return t.say("nudge")


@offline_role(ROLE)
def offline_user(request: ChatRequest) -> str:
    """The deterministic user: one message, or ``###STOP### <reason>``, from the context."""
    ctx = request.context
    return _reply(_Turn(
        persona=ctx["persona"], parts=tuple(ctx.get("parts") or (ctx["request"],)),
        hidden=ctx["hidden_info"],
        refusal_ok=ctx["kind"] == "unsupported" or ctx["expected_outcome"] == "refuse_unsupported",
        follow_up=bool(ctx.get("follow_up")), turn=ctx["turn"],
        rng=random.Random(ctx["seed"] * 1_000_003 + ctx["turn"]), dialogue=ctx["dialogue"]))

