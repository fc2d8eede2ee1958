"""Synthetic traffic by distribution, as AIPerf and GuideLLM describe a workload.

Input and output lengths in tokens (fixed, normal or an empirical histogram), a
shared prefix of N tokens per role, turns per session and the think time
between turns; the same seed gives the same file byte for byte.

Without a tokenizer, a token here is one word from a fixed list of short,
common English words, each about one token in GPT- and Llama-style
tokenizers, so a message of N words is close to N tokens for the usual
targets. A role's prefix is the same N words for every session of that role,
the case prefix caches exist for (persona prompts are long shared prefixes);
its tokens come on top of the sampled input length. The requested output
length is recorded as `max_tokens`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rolescope.errors import ConfigError
from rolescope.loadtests.distributions import LengthDistribution, read_histogram
from rolescope.loadtests.synth import DEFAULT_ROLES, DEFAULT_START
from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord

# Words of one token each in common BPE vocabularies (with their leading space).
_WORDS = """the of and to in is was for on that with as by at from his her they this had not are but
    have one all were when we there can an which their said if do will each about how up out them
    then she many some so these would other into has more two like him time see no could make than
    first been its who now people my made over did down only way find use may water long little very
    after words called just where most know get through back much go good new write our me man too
    any day same right look think also around another came come work three must because does part
    even place well such here take why help put different away again off went old number great tell
    men say small every found still between name should home big give air line set own under read
    last never us left end along while might next sound below saw something thought both few those
    always show large often together asked house world going want school important until form food
    keep children feet land side without boy once animal life enough took sometimes four head above
    kind began almost live page got earth need far hand high year mother light country father let
    night picture being study second soon story since white ever paper hard near sentence better best
    across during today however sure knew try told young sun thing whole hear example heard several
    change answer room sea against top turned learn point city play toward five himself usually money
    seen car morning body upon family later move face door cut done group true leave red"""
VOCABULARY: tuple[str, ...] = tuple(_WORDS.split())
ONE_TURN = LengthDistribution.fixed(1)
NO_THINK_TIME = LengthDistribution.fixed(0, minimum=0)
MAX_MESSAGE_TOKENS = 12_000  # stays inside the traffic format's 64,000-character message limit


@dataclass(frozen=True, slots=True)
class WorkloadOptions:
    input_tokens: LengthDistribution
    output_tokens: LengthDistribution | None = None
    prefix_tokens: int = 0
    turns: LengthDistribution = ONE_TURN
    think_time_ms: LengthDistribution = NO_THINK_TIME
    sessions: int = 300
    seed: int = 7
    roles: Sequence[str] = DEFAULT_ROLES
    start: float = DEFAULT_START
    sessions_per_second: float = 0.5
    stream_share: float = 1.0


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(VOCABULARY, k=count))


def role_prefixes(roles: Sequence[str], tokens: int, seed: int) -> dict[str, str]:
    """One fixed prefix per role, independent of how many sessions or which other roles there are."""
    if tokens <= 0:
        return {role: "" for role in roles}
    return {role: words(random.Random(f"prefix:{seed}:{role}"), tokens) for role in roles}


def _original(output_tokens: int) -> OriginalAnswer:
    # What a simulator-like service would have answered: ~40 tokens/s after a short first token.
    latency = round(0.2 + output_tokens / 40.0, 3)
    return OriginalAnswer(status=200, latency_s=latency, output_tokens=output_tokens)


def synthesize_workload(options: WorkloadOptions) -> list[TrafficRecord]:
    """Records of `options.sessions` sessions, sorted by arrival time."""
    if options.sessions < 1 or not options.roles:
        raise ValueError("synthesize_workload needs at least one session and one role")
    if options.prefix_tokens + options.input_tokens.mean > MAX_MESSAGE_TOKENS:
        raise ValueError(f"prefix plus mean input length must stay within {MAX_MESSAGE_TOKENS} tokens")
    rng = random.Random(options.seed)
    prefixes = role_prefixes(options.roles, options.prefix_tokens, options.seed)
    records: list[TrafficRecord] = []
    session_start = options.start
    for index in range(options.sessions):
        session_start += rng.expovariate(options.sessions_per_second)
        role = rng.choice(list(options.roles))
        stream = rng.random() < options.stream_share
        session = f"s_work{options.seed:04d}{index:06d}"
        arrival = session_start
        for turn in range(options.turns.sample(rng)):
            body_tokens = min(options.input_tokens.sample(rng), MAX_MESSAGE_TOKENS - options.prefix_tokens)
            body = words(rng, body_tokens)
            message = f"{prefixes[role]} {body}" if prefixes[role] else body
            wanted = options.output_tokens.sample(rng) if options.output_tokens is not None else None
            original = _original(wanted if wanted is not None else 60)
            records.append(
                TrafficRecord(
                    arrival=round(arrival, 3),
                    session=session,
                    turn=turn,
                    role=role,
                    message=message,
                    stream=stream,
                    max_tokens=wanted,
                    original=original,
                )
            )
            arrival += original.latency_s + options.think_time_ms.sample(rng) / 1000.0
    records.sort(key=lambda r: (r.arrival, r.session, r.turn))
    return records


def _lengths(
    name: str, mean: int | None, stddev: float, histogram: Path | None, problems: list[str]
) -> LengthDistribution | None:
    if histogram is not None:
        if mean is not None or stddev > 0:
            problems.append(f"--{name} and --{name}-stddev cannot be combined with --{name}-histogram")
            return None
        try:
            return read_histogram(histogram)
        except ConfigError as exc:
            problems.append(str(exc))
            return None
    if mean is None:
        if stddev > 0:
            problems.append(f"--{name}-stddev needs --{name}")
        return None
    return LengthDistribution.normal(mean, stddev)


def build_workload_options(
    *,
    isl: int | None,
    isl_stddev: float,
    isl_histogram: Path | None,
    osl: int | None,
    osl_stddev: float,
    osl_histogram: Path | None,
    prefix_tokens: int,
    turns_mean: float,
    turns_stddev: float,
    delay_mean_ms: float,
    delay_stddev_ms: float,
    sessions: int,
    seed: int,
    roles: Sequence[str],
    sessions_per_second: float,
) -> WorkloadOptions:
    """Options from command-line values; a ConfigError lists every problem at once."""
    problems: list[str] = []
    input_tokens = _lengths("isl", isl, isl_stddev, isl_histogram, problems)
    output_tokens = _lengths("osl", osl, osl_stddev, osl_histogram, problems)
    if input_tokens is None and not problems:
        problems.append("a workload by distribution needs --isl or --isl-histogram")
    if input_tokens is not None and prefix_tokens + input_tokens.mean > MAX_MESSAGE_TOKENS:
        problems.append(
            f"--prefix-tokens {prefix_tokens} plus a mean input of {input_tokens.mean:.0f} tokens is more "
            f"than a message may hold ({MAX_MESSAGE_TOKENS} tokens); lower one of them"
        )
    if problems or input_tokens is None:
        raise ConfigError("\n".join(problems))
    return WorkloadOptions(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        prefix_tokens=prefix_tokens,
        turns=LengthDistribution.normal(turns_mean, turns_stddev),
        think_time_ms=LengthDistribution.normal(delay_mean_ms, delay_stddev_ms, minimum=0),
        sessions=sessions,
        seed=seed,
        roles=roles,
        sessions_per_second=sessions_per_second,
    )
