"""Synthetic shadow traffic for the bundled roles, deterministic for a given seed.

The shape follows what role-play chat traffic looks like: sessions arrive as a
Poisson process, most are short and a few run long, users think for a few
seconds (log-normal) between turns, messages range from a word to a paragraph,
a small share carries placeholders left by redaction, and the recorded answers
show a simulator-like latency with the odd overload or timeout.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord

DEFAULT_ROLES: tuple[str, ...] = ("sherlock", "curie", "grimble")
DEFAULT_SEED = 7
DEFAULT_SESSIONS = 300
# 2026-01-01T00:00:00Z: a fixed origin keeps the bundled sample byte-for-byte reproducible.
DEFAULT_START = 1_767_225_600.0

_OPENERS = (
    "Hello!",
    "Good evening.",
    "Hi there,",
    "Quick question:",
    "I need your help.",
    "Okay,",
    "",
    "Listen,",
    "So,",
    "Morning!",
)
_TOPICS: dict[str, tuple[str, ...]] = {
    "sherlock": (
        "a missing bicycle from the station",
        "muddy boots on my neighbour's doorstep",
        "a letter with no stamp",
        "the cat that only appears on Tuesdays",
        "a torn train ticket",
        "footprints that stop in the middle of the garden",
        "my colleague's sudden tan",
    ),
    "curie": (
        "why some elements are radioactive",
        "how to calibrate a thermometer",
        "half-life",
        "measuring the speed of sound at home",
        "what an electrometer does",
        "isotopes",
        "keeping a good laboratory notebook",
    ),
    "grimble": (
        "a dragon that refuses to leave my roof",
        "the best stew for a rainy night",
        "riddles for a long journey",
        "a map with a missing corner",
        "my grumpy goat",
        "a treasure under the old bridge",
        "a song about mushrooms",
    ),
}
_ASKS = (
    "What do you make of {t}?",
    "Can you explain {t}?",
    "Tell me about {t}.",
    "I keep thinking about {t}. Any ideas?",
    "What would you do about {t}?",
    "Help me understand {t}, step by step.",
    "Is there a simple way to deal with {t}?",
)
_FOLLOW_UPS = (
    "Why?",
    "And then?",
    "Go on.",
    "That makes sense, but what about the timing?",
    "Could you say that more simply?",
    "Interesting. What else should I look for?",
    "I tried that and it did not work.",
    "Thanks! One more thing.",
    "Really?",
    "Can you give me an example?",
    "Hmm, I am not convinced.",
)
_DETAILS = (
    "It happened last night around nine.",
    "My sister saw it too.",
    "It has been going on for weeks.",
    "I wrote everything down in a notebook.",
    "Nobody else seems to care.",
    "I measured it twice and got different answers.",
    "It smelled faintly of smoke.",
)
_PLACEHOLDER_LINES = (
    "You can reach me at <EMAIL_1> if you find out more.",
    "My number is <PHONE_1>, call any time.",
    "The server at <IP_1> keeps timing out, is that related?",
    "I pasted my key <API_KEY_1> by mistake, sorry.",
)


@dataclass(frozen=True, slots=True)
class SynthOptions:
    sessions: int = DEFAULT_SESSIONS
    seed: int = DEFAULT_SEED
    roles: Sequence[str] = DEFAULT_ROLES
    start: float = DEFAULT_START
    sessions_per_second: float = 0.5
    stream_share: float = 0.7


def _message(rng: random.Random, role: str, turn: int) -> str:
    topics = _TOPICS.get(role) or tuple(t for ts in _TOPICS.values() for t in ts)
    if turn == 0:
        parts = [rng.choice(_OPENERS), rng.choice(_ASKS).format(t=rng.choice(topics))]
    else:
        parts = [rng.choice(_FOLLOW_UPS)]
    # A long tail of message lengths: most add nothing, some add a paragraph.
    for _ in range(min(int(rng.expovariate(0.9)), 6)):
        parts.append(rng.choice(_DETAILS))
    if rng.random() < 0.03:
        parts.append(rng.choice(_PLACEHOLDER_LINES))
    return " ".join(p for p in parts if p)


def _original(rng: random.Random, message: str) -> OriginalAnswer:
    roll = rng.random()
    if roll < 0.01:
        return OriginalAnswer(status=503, latency_s=0.002, output_tokens=0)
    if roll < 0.015:
        return OriginalAnswer(status=504, latency_s=30.0, output_tokens=0)
    tokens = max(8, int(rng.gauss(60 + len(message) / 8, 25)))
    latency = 0.2 + tokens / 40.0 + rng.uniform(0.0, 0.05)
    return OriginalAnswer(status=200, latency_s=round(latency, 3), output_tokens=tokens)


def _turn_count(rng: random.Random) -> int:
    # Geometric with mean ~3, capped: many one-question visits, some long chats.
    count = 1
    while count < 12 and rng.random() < 0.66:
        count += 1
    return count


def synthesize(options: SynthOptions = SynthOptions()) -> list[TrafficRecord]:
    """Records of `options.sessions` sessions, sorted by arrival time."""
    if options.sessions < 1 or not options.roles:
        raise ValueError("synthesize needs at least one session and one role")
    rng = random.Random(options.seed)
    records: list[TrafficRecord] = []
    session_start = options.start
    for index in range(options.sessions):
        session_start += rng.expovariate(options.sessions_per_second)
        role = rng.choice(list(options.roles))
        stream = rng.random() < options.stream_share
        session = f"s_synth{options.seed:04d}{index:06d}"
        arrival = session_start
        for turn in range(_turn_count(rng)):
            message = _message(rng, role, turn)
            original = _original(rng, message)
            records.append(
                TrafficRecord(
                    arrival=round(arrival, 3),
                    session=session,
                    turn=turn,
                    role=role,
                    message=message,
                    stream=stream,
                    original=original,
                )
            )
            # The next turn comes after the answer plus the user's reading and typing time.
            arrival += original.latency_s + rng.lognormvariate(1.8, 0.6)
    records.sort(key=lambda r: (r.arrival, r.session, r.turn))
    return records
