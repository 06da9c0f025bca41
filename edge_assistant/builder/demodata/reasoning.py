"""Arithmetic and logic word problems whose step-by-step answers are computed, so they are right.

Each solution is computed once and then written in one of several styles (numbered steps,
"First/Then/So", a paragraph, a bullet list), always ending on the answer.
"""

from __future__ import annotations

import itertools
import random

_NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivo", "Jules", "Kofi", "Lena")
_ITEMS = (("apples", "apple"), ("books", "book"), ("pencils", "pencil"), ("stickers", "sticker"),
          ("marbles", "marble"), ("cookies", "cookie"), ("tickets", "ticket"))
_TRAITS = (("taller", "tallest", "shortest"), ("older", "oldest", "youngest"),
           ("faster", "fastest", "slowest"), ("heavier", "heaviest", "lightest"))


def _shopping(rng: random.Random) -> dict[str, str]:
    name = rng.choice(_NAMES)
    (items, item) = rng.choice(_ITEMS)
    count, price, paid_extra = rng.randint(2, 9), rng.randint(2, 15), rng.randint(1, 20)
    total = count * price
    paid = total + paid_extra
    prompt = (f"{name} buys {count} {items} at ${price} each and pays with ${paid}. "
              f"How much change does {name} get?")
    response = (f"Step 1: cost = {count} x ${price} = ${total}.\n"
                f"Step 2: change = ${paid} - ${total} = ${paid - total}.\n"
                f"Answer: ${paid - total}.")
    return {"prompt": prompt, "response": response}


def _sharing(rng: random.Random) -> dict[str, str]:
    name = rng.choice(_NAMES)
    (items, _item) = rng.choice(_ITEMS)
    friends = rng.randint(2, 8)
    each = rng.randint(2, 12)
    left = rng.randint(0, friends - 1)
    total = friends * each + left
    prompt = (f"{name} has {total} {items} and shares them equally among {friends} friends. "
              f"How many does each friend get, and how many are left over?")
    response = (f"Step 1: {total} / {friends} = {each} remainder {left} "
                f"(because {friends} x {each} = {friends * each} and {total} - {friends * each} = {left}).\n"
                f"Answer: each friend gets {each}, and {left} are left over.")
    return {"prompt": prompt, "response": response}


def _speed(rng: random.Random) -> dict[str, str]:
    speed, hours, minutes = rng.randint(30, 110), rng.randint(1, 5), rng.choice((0, 15, 30, 45))
    time_h = hours + minutes / 60
    distance = speed * time_h
    prompt = f"A train travels at {speed} km/h for {hours} h {minutes} min. How far does it go?"
    response = (f"Step 1: {hours} h {minutes} min = {hours} + {minutes}/60 = {time_h:g} h.\n"
                f"Step 2: distance = {speed} km/h x {time_h:g} h = {distance:g} km.\n"
                f"Answer: {distance:g} km.")
    return {"prompt": prompt, "response": response}


def _percent(rng: random.Random) -> dict[str, str]:
    price = rng.randint(4, 60) * 5
    pct = rng.choice((10, 15, 20, 25, 30, 40, 50))
    off = price * pct / 100
    prompt = f"A jacket costs ${price}. It is on sale for {pct}% off. What is the sale price?"
    response = (f"Step 1: discount = {pct}% of ${price} = {pct}/100 x {price} = ${off:g}.\n"
                f"Step 2: sale price = ${price} - ${off:g} = ${price - off:g}.\n"
                f"Answer: ${price - off:g}.")
    return {"prompt": prompt, "response": response}


def _ordering(rng: random.Random) -> dict[str, str]:
    people = rng.sample(_NAMES, rng.choice((3, 4)))  # people[0] has the most of the trait
    comparative, most, least = rng.choice(_TRAITS)
    facts = [f"{a} is {comparative} than {b}." for a, b in zip(people, people[1:])]
    rng.shuffle(facts)
    ask_most = rng.random() < 0.5
    prompt = " ".join(facts) + f" Who is the {most if ask_most else least}?"
    chain = " > ".join(people)
    answer = people[0] if ask_most else people[-1]
    response = (f"Step 1: put the facts in one chain ({comparative} first): {chain}.\n"
                f"Step 2: the {most if ask_most else least} is at the "
                f"{'start' if ask_most else 'end'} of the chain.\n"
                f"Answer: {answer}.")
    return {"prompt": prompt, "response": response}


def _logic(rng: random.Random) -> dict[str, str]:
    p, q = rng.choice([("it rains", "the street is wet"), ("the alarm rings", "Ben wakes up"),
                       ("the light is green", "cars may go"), ("a number is divisible by 4", "it is even")])
    form = rng.choice(("modus_ponens", "modus_tollens", "affirm_consequent"))
    if form == "modus_ponens":
        prompt = f"If {p}, then {q}. We know that {p}. What follows?"
        response = (f"Step 1: the rule says {p} -> {q}.\nStep 2: the condition holds, so the rule applies "
                    f"(modus ponens).\nAnswer: {q}.")
    elif form == "modus_tollens":
        prompt = f"If {p}, then {q}. We know that it is not true that {q}. What follows?"
        response = (f"Step 1: the rule says {p} -> {q}.\nStep 2: had the condition held, the result would "
                    f"hold too; it does not, so (modus tollens) the condition is false.\n"
                    f"Answer: it is not true that {p}.")
    else:
        prompt = f"If {p}, then {q}. We know that {q}. Does it follow that {p}?"
        response = (f"Step 1: the rule says {p} -> {q}, not the other way round.\nStep 2: {q} could have "
                    f"another cause (affirming the consequent is a fallacy).\nAnswer: no, it does not follow.")
    return {"prompt": prompt, "response": response}


def _sequence(rng: random.Random) -> dict[str, str]:
    start, step, n = rng.randint(1, 20), rng.randint(2, 9), rng.randint(4, 6)
    terms = [start + step * k for k in range(n)]
    nxt = terms[-1] + step
    prompt = f"What number comes next: {', '.join(map(str, terms))}, ?"
    diffs = ", ".join(str(b - a) for a, b in itertools.pairwise(terms))
    response = (f"Step 1: differences between terms: {diffs}; each is {step}.\n"
                f"Step 2: next = {terms[-1]} + {step} = {nxt}.\nAnswer: {nxt}.")
    return {"prompt": prompt, "response": response}


def _containers(rng: random.Random) -> dict[str, str]:
    size = rng.choice((4, 6, 8, 10, 12, 24))
    need = rng.randint(size + 1, size * 9)
    full, extra = divmod(need, size)
    boxes = full + (1 if extra else 0)
    (items, _item) = rng.choice(_ITEMS)
    prompt = rng.choice((f"{items.capitalize()} come in packs of {size}. I need {need}. How many packs do I buy?",
                         f"How many packs of {size} {items} are needed to have at least {need}?"))
    rounding = f"a part pack cannot be bought, so round up to {boxes}" if extra else f"exactly {boxes} packs"
    response = (f"Step 1: {need} / {size} = {need / size:g}.\n"
                f"Step 2: {rounding}.\n"
                f"Answer: {boxes}.")
    return {"prompt": prompt, "response": response}


def _mean(rng: random.Random) -> dict[str, str]:
    k = rng.randint(3, 5)
    known = [rng.randint(50, 100) for _ in range(k - 1)]
    mean = rng.randint(max(known) - 10, max(known) + 10)
    missing = mean * k - sum(known)
    name = rng.choice(_NAMES)
    prompt = (f"{name}'s average over {k} games is {mean} points. The first {k - 1} games were "
              f"{', '.join(map(str, known))}. How many points were scored in the last game?")
    response = (f"Step 1: total = {k} x {mean} = {k * mean}.\n"
                f"Step 2: the known games add up to {sum(known)}.\n"
                f"Step 3: last game = {k * mean} - {sum(known)} = {missing}.\nAnswer: {missing}.")
    return {"prompt": prompt, "response": response}


def _ages(rng: random.Random) -> dict[str, str]:
    a, b = rng.sample(_NAMES, 2)
    young, gap, years = rng.randint(3, 30), rng.randint(2, 15), rng.randint(2, 10)
    total = (young + years) + (young + gap + years)
    prompt = (f"{a} is {gap} years older than {b}. In {years} years their ages will add up to {total}. "
              f"How old is {a} now?")
    response = (f"Step 1: in {years} years the sum is {total}, so now it is {total} - 2 x {years} = {total - 2 * years}.\n"
                f"Step 2: {b} = ({total - 2 * years} - {gap}) / 2 = {young}.\n"
                f"Step 3: {a} = {young} + {gap} = {young + gap}.\nAnswer: {young + gap}.")
    return {"prompt": prompt, "response": response}


def _duration(rng: random.Random) -> dict[str, str]:
    h, m = rng.randint(6, 20), rng.choice((0, 10, 15, 20, 35, 40, 50))
    length = rng.randint(25, 200)
    end = h * 60 + m + length
    prompt = rng.choice((f"A film starts at {h}:{m:02d} and runs {length} minutes. How many minutes past the hour does it end?",
                         f"The workshop begins at {h:02d}:{m:02d} and lasts {length} min. At what hour (24-hour clock) is it over?"))
    asked = end % 60 if "minutes past" in prompt else end // 60
    response = (f"Step 1: {h}:{m:02d} is {h * 60 + m} minutes after midnight.\n"
                f"Step 2: {h * 60 + m} + {length} = {end} minutes = {end // 60}:{end % 60:02d}.\n"
                f"Answer: {asked}.")
    return {"prompt": prompt, "response": response}


def _rate(rng: random.Random) -> dict[str, str]:
    per, units = rng.choice(((3, "litres"), (12, "pages"), (40, "bottles"), (8, "boxes")))
    minutes = rng.randint(3, 40)
    total = per * minutes
    prompt = rng.choice((f"A machine handles {per} {units} per minute. How many minutes for {total} {units}?",
                         f"At {per} {units} a minute, how long does it take to do {total} {units}?"))
    response = (f"Step 1: time = amount / rate = {total} / {per}.\nStep 2: {total} / {per} = {minutes}.\n"
                f"Answer: {minutes} minutes.")
    return {"prompt": prompt, "response": response}


_KINDS = (_shopping, _sharing, _speed, _percent, _ordering, _logic, _sequence, _containers, _mean, _ages,
          _duration, _rate)
_PREFIXES = ("", "", "", "Quick question: ", "Solve this: ", "Can you help? ", "Word problem: ")
_SUFFIXES = ("", "", "", " Show your work.", " Explain briefly.", " Think step by step.")


def _restyle(rng: random.Random, response: str) -> str:
    """The computed "Step k: ... Answer: ..." solution in one of several natural styles, answer last."""
    lines = response.splitlines()
    steps = [ln.split(": ", 1)[1] for ln in lines if ln.startswith("Step ")]
    answer = next(ln.split(": ", 1)[1] for ln in lines if ln.startswith("Answer: ")).rstrip(".")
    style = rng.randrange(4)
    if style == 0 or not steps:
        return response
    if style == 1:
        words = ("First", "Then", "Next", "After that")
        body = "\n".join(f"{words[min(i, 3)]}, {st[0].lower() + st[1:]}" for i, st in enumerate(steps))
        return f"{body}\nSo the answer is {answer}."
    if style == 2:
        return " ".join(st[0].upper() + st[1:] for st in steps) + f" **Answer: {answer}**"
    return "Let's work it out.\n" + "\n".join(f"- {st}" for st in steps) + f"\n\nFinal answer: {answer}."


def generate(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = _KINDS[i % len(_KINDS)](rng)
        prompt = rng.choice(_PREFIXES) + row["prompt"] + rng.choice(_SUFFIXES)
        rows.append({"prompt": prompt, "response": _restyle(rng, row["response"])})
    return rows
