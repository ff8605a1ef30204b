"""The logic gym domain: reasoning-gym puzzles plus our own Morse, riddle and table generators.

Where reasoning-gym has a puzzle (24-game, Sudoku, cryptarithms, countdown, knights and knaves,
zebra puzzles, Futoshiki) the task carries its JSON entry and is scored by the dataset's own
``score_answer``, reward 1 only on a full score. The rest are generated here: Morse decoding,
a curated riddle set with accepted aliases, and multi-hop tabular reasoning (two markdown tables,
a question needing a join and an aggregation). ``LEVELS`` maps each difficulty to its generators
(name → function), so adding a puzzle is one entry. Every task names its generator in
``metadata["generator"]`` and holds only JSON data, so it verifies after a JSON round trip.
The policy answers inside ``<answer>…</answer>``; rewards are binary.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache, partial
from typing import Callable

from kimi_pipeline.gym.answers import equivalent, extract_answer
from kimi_pipeline.gym.registry import Domain, Verification, register_domain
from kimi_pipeline.records import GymTask

INSTRUCTION = "Put your final answer inside <answer></answer> tags."
MAX_LOGIC_ANSWER_CHARS = 2000

Spec = tuple[str, object, str, list[str], dict]  # prompt text, answer, generator, tags, metadata
Generator = Callable[[random.Random, int], list[Spec]]

# --------------------------------------------------------------------------- reasoning-gym

# (dataset, config) per level; configs only set difficulty knobs of the installed version
RG_CONFIGS: dict[int, dict[str, dict]] = {
    1: {
        "puzzle24": {},
        "mini_sudoku": {"min_empty": 6, "max_empty": 9},
        "cryptarithm": {"min_words": 2, "max_words": 2},
        "knights_knaves": {"n_people": 2},
    },
    2: {
        "countdown": {"min_numbers": 4, "max_numbers": 4},
        "sudoku": {"min_empty": 25, "max_empty": 35},
        "cryptarithm": {"min_words": 2, "max_words": 3},
        "knights_knaves": {"n_people": 3},
        "zebra_puzzles": {"num_people": 3, "num_characteristics": 3},
        "futoshiki": {"min_board_size": 4, "max_board_size": 4},
    },
    3: {
        "countdown": {"min_numbers": 5, "max_numbers": 6},
        "sudoku": {"min_empty": 40, "max_empty": 50},
        "cryptarithm": {"min_words": 3, "max_words": 4},
        "knights_knaves": {"n_people": 4},
        "zebra_puzzles": {"num_people": 4, "num_characteristics": 4},
        "futoshiki": {"min_board_size": 5, "max_board_size": 6},
    },
}
RG_TAGS = {
    "puzzle24": "arithmetic-puzzle", "countdown": "arithmetic-puzzle", "sudoku": "grid-puzzle",
    "mini_sudoku": "grid-puzzle", "futoshiki": "grid-puzzle", "cryptarithm": "cryptarithm",
    "knights_knaves": "deduction", "zebra_puzzles": "deduction",
}


@lru_cache(maxsize=None)
def _rg_scorer(name: str, config_json: str):
    """One dataset instance per (name, config), used only for its ``score_answer``."""
    import reasoning_gym

    return reasoning_gym.create_dataset(name, size=1, seed=0, **json.loads(config_json))


def _rg_generator(name: str, config: dict) -> Generator:
    def generate(rng: random.Random, n: int) -> list[Spec]:
        import reasoning_gym

        dataset = reasoning_gym.create_dataset(name, size=n, seed=rng.getrandbits(31), **config)
        specs = []
        for entry in dataset:
            entry = json.loads(json.dumps(entry))  # exactly what a stored task will hold
            meta = {"rg_dataset": name, "rg_config": config, "rg_entry": entry}
            tags = ["reasoning-gym", RG_TAGS[name]]
            specs.append((entry["question"], entry["answer"], f"rg:{name}", tags, meta))
        return specs

    return generate


def _score_rg(task: GymTask, answer: str) -> tuple[bool, str]:
    meta = task.metadata
    scorer = _rg_scorer(meta["rg_dataset"], json.dumps(meta.get("rg_config", {}), sort_keys=True))
    score = scorer.score_answer(answer, meta["rg_entry"])
    return score == 1.0, f"reasoning-gym {meta['rg_dataset']} score {score:g}"


# ---------------------------------------------------------------------------------- Morse

MORSE = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", (
    ".- -... -.-. -.. . ..-. --. .... .. .--- -.- .-.. -- -. --- .--. --.- .-. ... - ..- ...- .-- -..- -.-- --.. "
    "----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----.").split()))
WORDS = ("river stone light green quick brown forest signal harbor winter paper cloud silver orbit "
         "garden window rocket planet castle thunder marble candle meadow falcon spiral lantern "
         "copper violet anchor bridge puzzle engine shadow crystal velvet summit canyon").split()
MORSE_WORDS = {1: (1, 2), 2: (2, 3), 3: (4, 5)}


def morse_encode(text: str) -> str:
    return " / ".join(" ".join(MORSE[ch] for ch in word) for word in text.upper().split())


def _morse(rng: random.Random, n: int, difficulty: int) -> list[Spec]:
    specs = []
    for _ in range(n):
        phrase = " ".join(rng.sample(WORDS, rng.randint(*MORSE_WORDS[difficulty]))).upper()
        if difficulty == 3:
            phrase += f" {rng.randint(10, 999)}"
        prompt = ("Decode this Morse code. Letters are separated by spaces and words by ' / '.\n\n"
                  f"{morse_encode(phrase)}")
        specs.append((prompt, phrase, "morse", ["decoding", "morse"], {}))
    return specs


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.upper()).split())


def _score_morse(task: GymTask, answer: str) -> tuple[bool, str]:
    ok = _plain(answer) == _plain(str(task.answer))
    return ok, "decoded text matches" if ok else f"decoded {answer[:60]!r}, expected {task.answer!r}"


# -------------------------------------------------------------------------------- riddles

# (level, riddle, accepted answers): answers are compared after dropping articles and case
RIDDLES: list[tuple[int, str, list[str]]] = [
    (1, "What has keys but can't open locks?", ["piano", "keyboard"]),
    (1, "What has hands but cannot clap?", ["clock", "watch"]),
    (1, "What gets wetter the more it dries?", ["towel"]),
    (1, "What has a neck but no head?", ["bottle"]),
    (1, "What has one eye but cannot see?", ["needle"]),
    (1, "What goes up but never comes down?", ["age", "your age"]),
    (1, "What has legs but cannot walk?", ["table", "chair"]),
    (1, "What can you catch but not throw?", ["cold", "a cold"]),
    (2, "What has a head and a tail but no body?", ["coin"]),
    (2, "The more you take, the more you leave behind. What am I?", ["footsteps", "steps", "footprints"]),
    (2, "What can travel around the world while staying in a corner?", ["stamp", "postage stamp"]),
    (2, "What has many teeth but cannot bite?", ["comb", "zipper"]),
    (2, "What belongs to you, but other people use it more than you do?", ["name", "your name"]),
    (2, "What is full of holes but still holds water?", ["sponge"]),
    (2, "What runs but never walks, has a mouth but never talks?", ["river"]),
    (2, "I'm tall when I'm young and short when I'm old. What am I?", ["candle"]),
    (3, "What can fill a room but takes up no space?", ["light"]),
    (3, "If you have me, you want to share me. If you share me, you haven't got me. What am I?", ["secret"]),
    (3, "What word becomes shorter when you add two letters to it?", ["short"]),
    (3, "What comes once in a minute, twice in a moment, but never in a thousand years?",
     ["m", "letter m", "the letter m"]),
    (3, "I speak without a mouth and hear without ears. I have no body, but I come alive with "
        "wind. What am I?", ["echo"]),
    (3, "What has cities but no houses, forests but no trees, and water but no fish?", ["map"]),
    (3, "What disappears as soon as you say its name?", ["silence"]),
    (3, "Forward I am heavy, but backward I am not. What am I?", ["ton"]),
]
_ARTICLES = re.compile(r"^(?:(?:it is|it s|its|i am|you are|a|an|the)\s+)+")


def _riddle(rng: random.Random, n: int, difficulty: int) -> list[Spec]:
    pool = [r for r in RIDDLES if r[0] == difficulty]
    prompt = "Solve this riddle; answer with the single thing it describes.\n\n{}"
    return [(prompt.format(text), aliases, "riddle", ["riddle", "lateral-thinking"], {})
            for _, text, aliases in (rng.choice(pool) for _ in range(n))]


def _riddle_key(text: str) -> str:
    return _ARTICLES.sub("", _plain(text).lower()).rstrip("s")


def _score_riddle(task: GymTask, answer: str) -> tuple[bool, str]:
    accepted = {_riddle_key(alias) for alias in task.answer}
    ok = _riddle_key(answer) in accepted
    return ok, "accepted riddle answer" if ok else f"{answer[:60]!r} is not one of {sorted(task.answer)}"


# ------------------------------------------------------------------------- tabular reasoning

FIRST_NAMES = ("Ada Ben Cleo Dev Eli Fay Gus Hana Ivo Jun Kai Lea Milo Nia Omar Pia Quin Rosa Sam "
               "Tia Uma Vik Wen Xia Yuri Zoe").split()
DEPARTMENTS = ["Sales", "Research", "Support", "Finance", "Legal", "Design"]
CITIES = ["Oslo", "Lima", "Pune", "Kyoto", "Accra"]
TABLE_SIZES = {1: (5, 3), 2: (8, 4), 3: (12, 5)}  # employees, departments


def _markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows])


def _tables(rng: random.Random, difficulty: int) -> tuple[list[dict], list[dict]]:
    n_emp, n_dep = TABLE_SIZES[difficulty]
    departments = [{"dept_id": 10 + i, "name": name, "city": rng.choice(CITIES)}
                   for i, name in enumerate(rng.sample(DEPARTMENTS, n_dep))]
    employees = [{"emp_id": 100 + i, "name": name, "dept_id": rng.choice(departments)["dept_id"],
                  "salary": rng.randint(30, 120) * 1000}
                 for i, name in enumerate(rng.sample(FIRST_NAMES, n_emp))]
    return employees, departments


def _city_total(employees, departments, rng):
    city = rng.choice(sorted({d["city"] for d in departments}))
    ids = {d["dept_id"] for d in departments if d["city"] == city}
    total = sum(e["salary"] for e in employees if e["dept_id"] in ids)
    return f"What is the total salary of all employees whose department is located in {city}?", str(total)


def _dept_count_above(employees, departments, rng):
    dept = rng.choice(departments)
    threshold = rng.randint(4, 10) * 10000
    count = sum(1 for e in employees if e["dept_id"] == dept["dept_id"] and e["salary"] > threshold)
    return f"How many employees of the {dept['name']} department earn more than {threshold}?", str(count)


def _top_city(employees, departments, rng):
    totals: dict[str, int] = {}
    city_of = {d["dept_id"]: d["city"] for d in departments}
    for e in employees:
        totals[city_of[e["dept_id"]]] = totals.get(city_of[e["dept_id"]], 0) + e["salary"]
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return "Which city has the highest total salary paid to the employees of its departments?", ranked[0][0]


def _richest_colleague_dept(employees, departments, rng):
    person = rng.choice(employees)
    mates = [e for e in employees if e["dept_id"] == person["dept_id"]]
    top = max(mates, key=lambda e: e["salary"])
    if sum(1 for e in mates if e["salary"] == top["salary"]) > 1:
        return None
    name = person["name"]
    question = f"Who is the best-paid employee in the same department as {name} (possibly {name})?"
    return question, top["name"]


TABLE_QUESTIONS = {
    1: [_dept_count_above, _city_total],
    2: [_city_total, _dept_count_above, _richest_colleague_dept],
    3: [_top_city, _richest_colleague_dept, _city_total],
}


def _table_task(rng: random.Random, difficulty: int) -> Spec:
    while True:
        employees, departments = _tables(rng, difficulty)
        made = rng.choice(TABLE_QUESTIONS[difficulty])(employees, departments, rng)
        if made:
            break
    question, gold = made
    emp = _markdown(["emp_id", "name", "dept_id", "salary"], [list(e.values()) for e in employees])
    dep = _markdown(["dept_id", "department", "city"], [list(d.values()) for d in departments])
    prompt = f"Table `employees`:\n\n{emp}\n\nTable `departments`:\n\n{dep}\n\n{question}"
    kind = "number" if gold.isdigit() else "text"
    return prompt, gold, "table", ["tabular", "multi-hop", "aggregation"], {"answer_kind": kind}


def _table(rng: random.Random, n: int, difficulty: int) -> list[Spec]:
    return [_table_task(rng, difficulty) for _ in range(n)]


def _score_table(task: GymTask, answer: str) -> tuple[bool, str]:
    if task.metadata.get("answer_kind") == "number":
        return equivalent(str(task.answer), answer)
    ok = _plain(answer) == _plain(str(task.answer))
    return ok, "matches" if ok else f"{answer[:60]!r} is not {task.answer!r}"


# -------------------------------------------------------------------------------- registry

OWN_GENERATORS: dict[str, Callable[[random.Random, int, int], list[Spec]]] = {
    "morse": _morse, "riddle": _riddle, "table": _table,
}
SCORERS: dict[str, Callable[[GymTask, str], tuple[bool, str]]] = {
    "morse": _score_morse, "riddle": _score_riddle, "table": _score_table,
}


def level_generators(difficulty: int) -> dict[str, Generator]:
    """Every generator of a level: reasoning-gym datasets and our own, by generator name."""
    rg = {f"rg:{name}": _rg_generator(name, cfg) for name, cfg in RG_CONFIGS[difficulty].items()}
    own = {name: partial(fn, difficulty=difficulty) for name, fn in OWN_GENERATORS.items()}
    return {**rg, **own}


@register_domain("logic")
class LogicDomain(Domain):
    description = "reasoning-gym puzzles (24, Sudoku, cryptarithms …), Morse, riddles, multi-hop tables."
    levels = (1, 2, 3)

    def generate(self, rng: random.Random, n: int, difficulty: int) -> list[GymTask]:
        generators = level_generators(difficulty)
        names = [rng.choice(sorted(generators)) for _ in range(n)]
        tasks = []
        for name in sorted(set(names)):
            for text, answer, generator, tags, meta in generators[name](rng, names.count(name)):
                tasks.append(GymTask(
                    task_id=f"logic-L{difficulty}-{name.replace(':', '-')}-{rng.getrandbits(48):012x}",
                    domain="logic", prompt=f"{text}\n\n{INSTRUCTION}", answer=answer, tags=tags,
                    difficulty=difficulty, metadata={"generator": generator, **meta},
                ))
        rng.shuffle(tasks)
        return tasks

    def verify(self, task: GymTask, response: str) -> Verification:
        answer, found = extract_answer(response)
        if answer is None:
            return Verification(0.0, found, {"extracted": None})
        if len(answer) > MAX_LOGIC_ANSWER_CHARS:
            return Verification(0.0, f"answer longer than {MAX_LOGIC_ANSWER_CHARS} characters", {})
        generator = str(task.metadata.get("generator", ""))
        scorer = _score_rg if generator.startswith("rg:") else SCORERS.get(generator)
        if scorer is None:
            return Verification(0.0, f"task has unknown generator {generator!r}", {})
        try:
            ok, why = scorer(task, answer)
        except Exception as exc:  # a scorer choking on model output is a 0, never a crash
            ok, why = False, f"scorer failed: {type(exc).__name__}: {str(exc)[:80]}"
        return Verification(1.0 if ok else 0.0, why, {"extracted": answer[:200]})
