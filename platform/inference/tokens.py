"""A small, deterministic word-piece tokenizer shared by the simulator and usage accounting.

A token is a run of word characters or a single punctuation mark, with the
whitespace before it attached, so joining the tokens gives back the text exactly.
"""

from __future__ import annotations

import re
from functools import lru_cache

_TOKEN = re.compile(r"\s*(?:\w+(?:'\w+)?|[^\w\s])|\s+$")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return sum(1 for token in _TOKEN.findall(text) if not token.isspace())


@lru_cache(maxsize=256)
def prompt_tokens(system_prompt: str) -> int:
    """count_tokens of a role's system prompt, which every request of the role repeats word for word."""
    return count_tokens(system_prompt)
