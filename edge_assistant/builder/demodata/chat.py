"""General conversation: greetings, facts from a table, writing help. Phase 1 data and the router's `none` class."""

from __future__ import annotations

import random

# (country, capital, continent): checked by hand.
_CAPITALS = [
    ("France", "Paris", "Europe"), ("Japan", "Tokyo", "Asia"), ("Kenya", "Nairobi", "Africa"),
    ("Brazil", "Brasília", "South America"), ("Canada", "Ottawa", "North America"),
    ("Australia", "Canberra", "Oceania"), ("Egypt", "Cairo", "Africa"), ("India", "New Delhi", "Asia"),
    ("Norway", "Oslo", "Europe"), ("Peru", "Lima", "South America"), ("Mexico", "Mexico City", "North America"),
    ("Italy", "Rome", "Europe"), ("Vietnam", "Hanoi", "Asia"), ("Ghana", "Accra", "Africa"),
    ("Chile", "Santiago", "South America"), ("Poland", "Warsaw", "Europe"),
]
# (word, meaning): short plain definitions.
_WORDS = [
    ("ephemeral", "lasting for a very short time"), ("candid", "honest and direct"),
    ("meticulous", "very careful about small details"), ("resilient", "able to recover quickly from difficulty"),
    ("ubiquitous", "found everywhere"), ("benevolent", "kind and wanting to help others"),
    ("pragmatic", "dealing with things in a practical way"), ("serene", "calm and peaceful"),
    ("tenacious", "holding on firmly; not giving up easily"), ("verbose", "using more words than needed"),
]
_SMALL_TALK = [
    ("Hi! How are you today?", "Hello! I'm doing well, thank you for asking. How can I help you today?"),
    ("Thanks for your help!", "You're welcome! Let me know if there's anything else I can do."),
    ("Can you tell me a fun fact?", "Sure! Octopuses have three hearts: two pump blood to the gills and one to the rest of the body."),
    ("What can you do?", "I can answer questions, explain ideas, help with writing, and chat. What would you like to do?"),
    ("Good morning!", "Good morning! I hope your day is off to a good start. What can I do for you?"),
    ("I'm feeling a bit tired.", "Sorry to hear that. A short break, some water or a walk outside can help. Is there something I can take off your plate?"),
    ("Suggest a name for a grey cat.", "How about Smokey, Ash, Pebble or Earl Grey?"),
    ("What should I cook tonight?", "A quick option is a vegetable stir-fry with rice: it takes about 20 minutes and uses whatever vegetables you have."),
    ("Give me a tip for better sleep.", "Keep a regular schedule: going to bed and getting up at the same time every day helps your body clock."),
    ("Recommend a hobby I can start at home.", "Sketching is a good start: you only need a pencil and paper, and you can improve a little every day."),
]


_CAPITAL_PHRASES = ("What is the capital of {country}?", "Which city is the capital of {country}?")
_WORD_PHRASES = ("What does the word '{word}' mean?", "Define '{word}'.")
_SENTENCES = ("the meeting is moved to friday", "please send me the file tomorrow",
              "our team won the game last night", "the store opens at nine")
_REWRITE_PHRASE = "Fix the capitalization and punctuation: {sentence}"


def _capital(rng: random.Random) -> dict[str, str]:
    country, capital, continent = rng.choice(_CAPITALS)
    prompt = rng.choice(_CAPITAL_PHRASES).format(country=country)
    return {"prompt": prompt, "response": f"The capital of {country} is {capital}. {country} is in {continent}."}


def _word(rng: random.Random) -> dict[str, str]:
    word, meaning = rng.choice(_WORDS)
    prompt = rng.choice(_WORD_PHRASES).format(word=word)
    return {"prompt": prompt, "response": f"'{word.capitalize()}' means {meaning}."}


def _small_talk(rng: random.Random) -> dict[str, str]:
    prompt, response = rng.choice(_SMALL_TALK)
    return {"prompt": prompt, "response": response}


def _rewrite(rng: random.Random) -> dict[str, str]:
    sentence = rng.choice(_SENTENCES)
    fixed = sentence[0].upper() + sentence[1:] + "."
    fixed = fixed.replace("friday", "Friday")
    return {"prompt": _REWRITE_PHRASE.format(sentence=sentence), "response": fixed}


_KINDS = (_capital, _word, _small_talk, _rewrite)


def all_prompts() -> frozenset[str]:
    """Every prompt this generator can write: how the router tells general rows mixed into a domain."""
    return frozenset([p.format(country=c[0]) for p in _CAPITAL_PHRASES for c in _CAPITALS]
                     + [p.format(word=w[0]) for p in _WORD_PHRASES for w in _WORDS]
                     + [p for p, _ in _SMALL_TALK] + [_REWRITE_PHRASE.format(sentence=x) for x in _SENTENCES])


def generate(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [_KINDS[i % len(_KINDS)](rng) for i in range(n)]
