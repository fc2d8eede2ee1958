"""Writes an answer in a persona's voice from its YAML fields and the conversation, deterministically.

Pure functions over a seeded `random.Random`: the simulator picks the seed, this
module picks the words. Every answer refers to what the user asked (and, when
there is history, to what they said before), speaks with the persona's openers,
traits, interests and catchphrases, and is then held to the role's
response_constraints (sentence count, banned words, length, tokens). A persona
written as plain text (a system prompt) speaks with a voice read from that text:
its content words are what it talks about, its descriptive words how it is, and
the lines it quotes are its catchphrases.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache

from rolescope.inference.base import ChatMessage
from rolescope.inference.tokens import tokenize
from rolescope.roles import Persona, ResponseConstraints

# Words too common to be what a message is about (kept as text: one line per few words is easier to edit).
_STOPWORD_TEXT = """
about above after again against also because been before being below between both could does doing
down during each from further have having here hers herself himself into itself just more most myself
once only other ours ourselves over same should some such than that their theirs them themselves then
there these they this those through under until very what when where which while whom will with would
your yours yourself yourselves tell please know think want like make really thing things something
hello hey hiya greetings thanks thank good morning evening afternoon
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_BODY_TEMPLATES: tuple[str, ...] = (
    "You ask about {topic}, and that is no small matter.",
    "Being {trait}, I look at {topic} and see more than most would.",
    "{Topic} puts me in mind of {interest}; the resemblance is not an accident.",
    "Follow {topic} far enough and you arrive at {interest}.",
    "My {trait} nature tells me that {topic} hides more than it shows.",
    "There is a pattern in {topic}, and patterns are my trade.",
    "I would begin with {interest} before I said a word about {topic}.",
    "Most people would rush past {topic}; I prefer to stop and look.",
    "The heart of it is simple: {topic} rewards the {trait}.",
)
_MEMORY_TEMPLATES: tuple[str, ...] = (
    "You mentioned {earlier} before, and it bears on this.",
    "Earlier you spoke of {earlier}; I have not forgotten it.",
    "Keep {earlier} in mind as well, from what you told me before.",
)
_DEFAULT_OPENERS = ("Well.", "Let me see.", "Hmm.")
_DEFAULT_CLOSERS = ("What else would you ask?", "There you have it.")
_DEFAULT_TRAITS = ("thoughtful",)
# Endings of words that describe a character ("patient", "curious", "gentle", "playful").
_DESCRIPTIVE = re.compile(r"[a-z]{2,}(?:ful|ous|ive|ient|ish|less|ical|some)")
_QUOTED = re.compile(r"[\"“]([^\"”\n]{4,80})[\"”]")
_PROMPT_WORDS = frozenset(
    {"character", "persona", "always", "never", "answer", "answers", "reply", "user", "question", "questions"}
)


def salient_words(text: str, limit: int = 2) -> list[str]:
    """The first content words of a message (longest first among equals), lower-cased."""
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", text)]
    seen: list[str] = []
    for word in words:
        if word not in _STOPWORDS and word not in seen:
            seen.append(word)
    ranked = sorted(seen, key=lambda w: (-len(w), seen.index(w)))
    return sorted(ranked[:limit], key=seen.index)


def _topic(words: list[str]) -> str:
    return " and ".join(words) if words else "your question"


def _earlier_topic(history: tuple[ChatMessage, ...], current: list[str]) -> str | None:
    for message in reversed(history):
        if message.role != "user":
            continue
        for word in salient_words(message.content, limit=3):
            if word not in current:
                return word
    return None


@lru_cache(maxsize=64)
def voice_of_prompt(prompt: str) -> Persona:
    """A structured voice read from a plain-text persona; cached, as a role's prompt never changes."""
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", prompt)]
    descriptive = [w for w in dict.fromkeys(words) if _DESCRIPTIVE.fullmatch(w) and w not in _STOPWORDS]
    about = [w for w in salient_words(prompt, limit=8) if w not in _PROMPT_WORDS and w not in descriptive]
    quoted = tuple(dict.fromkeys(q.strip() for q in _QUOTED.findall(prompt)))
    # A quoted line that does not end a sentence ("Once, long ago") is how the persona starts one.
    openers = tuple(f"{q}," for q in quoted if not q.endswith((".", "!", "?", ",")))
    closers = tuple(q for q in quoted if q.endswith((".", "!", "?")))
    return Persona(
        display_name="narrator",
        background=prompt[:4000],
        traits=tuple(descriptive[:6]) or _DEFAULT_TRAITS,
        speaking_style="as the prompt describes",
        interests=tuple(about[:6]),
        openers=openers[:8],
        closers=closers[:8],
    )


def voice(persona: Persona | str) -> Persona:
    return persona if isinstance(persona, Persona) else voice_of_prompt(persona)


def _fill(template: str, rng: random.Random, persona: Persona, topic: str, earlier: str | None) -> str:
    interests = persona.interests or persona.traits
    return template.format(
        topic=topic,
        Topic=topic[:1].upper() + topic[1:],
        trait=rng.choice(persona.traits),
        interest=rng.choice(interests),
        earlier=earlier or topic,
    )


def compose_reply(
    persona: Persona | str,
    constraints: ResponseConstraints,
    history: tuple[ChatMessage, ...],
    message: str,
    rng: random.Random,
) -> str:
    """The in-character answer to `message`, already held to `constraints`."""
    persona = voice(persona)
    banned = set(constraints.banned_words)
    words = [w for w in salient_words(message) if w not in banned]
    topic = _topic(words)
    earlier = _earlier_topic(history, words)
    if earlier in banned:
        earlier = None

    target = rng.randint(constraints.min_sentences, constraints.max_sentences)
    opener = rng.choice(persona.openers or _DEFAULT_OPENERS)
    body = list(_BODY_TEMPLATES)
    rng.shuffle(body)
    first = _fill(body.pop(), rng, persona, topic, earlier)
    # "Well now, traveller," and "Ah, I perceive" continue the sentence rather than end one.
    if not opener.endswith((".", "!", "?")) and not first.startswith(("I ", "I'")):
        first = first[:1].lower() + first[1:]
    sentences = [f"{opener} {first}"]
    if earlier is not None and target > 1:
        sentences.append(_fill(rng.choice(_MEMORY_TEMPLATES), rng, persona, topic, earlier))
    while body and len(sentences) < target - 1:
        sentences.append(_fill(body.pop(), rng, persona, topic, earlier))
    if len(sentences) < target:
        tail = persona.catchphrases + persona.closers if persona.catchphrases or persona.closers else None
        sentences.append(rng.choice(tail or _DEFAULT_CLOSERS))
    return apply_constraints(" ".join(sentences), constraints)


@lru_cache(maxsize=256)
def _banned_pattern(banned: tuple[str, ...]) -> re.Pattern[str]:
    # Built once per role's word list: escaping and joining the words cost more than the match itself.
    return re.compile(r"\s*\b(?:" + "|".join(re.escape(w) for w in banned) + r")\b", re.IGNORECASE)


def remove_banned_words(text: str, banned: tuple[str, ...]) -> str:
    if not banned:
        return text
    return _banned_pattern(banned).sub("", text).strip()


def apply_constraints(text: str, constraints: ResponseConstraints) -> str:
    """Banned words removed, then cut to max_tokens and max_length at a word boundary."""
    text = remove_banned_words(text, constraints.banned_words)
    tokens = tokenize(text)
    if sum(1 for t in tokens if not t.isspace()) > constraints.max_tokens:
        kept: list[str] = []
        for token in tokens:
            if not token.isspace():
                if len(kept) >= constraints.max_tokens:
                    break
                kept.append(token)
        text = "".join(kept)
    if len(text) > constraints.max_length:
        cut = text[: constraints.max_length]
        boundary = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        text = cut[: boundary + 1] if boundary > constraints.max_length // 2 else cut.rsplit(" ", 1)[0]
    return text.strip()
