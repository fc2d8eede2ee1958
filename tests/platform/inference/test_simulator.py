"""The simulator: deterministic, in character, within constraints, honest about time, and faultable."""

from __future__ import annotations

import asyncio
import re

import pytest

from rolescope.inference import simulator as simulator_module
from rolescope.inference.base import ChatMessage, InferenceError, InferenceInput, InferenceTimeoutError
from rolescope.inference.persona_text import voice
from rolescope.inference.simulator import SimulatorBackend, plan_answer
from rolescope.inference.tokens import count_tokens, tokenize
from rolescope.roles import Role, SimulatorTiming, load_roles
from rolescope.settings import FaultSettings, bundled_roles_path

ROLES = load_roles(bundled_roles_path())
FAST = SimulatorTiming(ttft_ms=1, tokens_per_second=100_000, jitter=0, seed=3)


def _inputs(
    role: Role, message: str, history: tuple[ChatMessage, ...] = (), **changes: object
) -> InferenceInput:
    inputs = InferenceInput(
        role_name=role.name,
        role_version=role.version,
        system_prompt=role.system_prompt(),
        history=history,
        message=message,
        persona=role.persona,
        constraints=role.response_constraints,
        timing=FAST,
    )
    for key, value in changes.items():
        object.__setattr__(inputs, key, value)
    return inputs


def test_tokenizer_round_trips_text() -> None:
    text = "Elementary, my dear Watson!  It's   221B."
    assert "".join(tokenize(text)) == text
    assert count_tokens(text) == 9  # Elementary , my dear Watson ! It's 221B .


def test_same_inputs_give_the_same_text_tokens_and_delays() -> None:
    role = ROLES["sherlock"]
    first, second = (
        plan_answer(_inputs(role, "Who took the pearl?")),
        plan_answer(_inputs(role, "Who took the pearl?")),
    )
    assert first == second
    assert plan_answer(_inputs(role, "Who took the ruby?")).text != first.text
    reseeded = plan_answer(_inputs(role, "Who took the pearl?", timing=SimulatorTiming(seed=99)))
    assert reseeded.text != first.text or reseeded.delays_s != first.delays_s


def test_history_changes_the_answer_and_is_referred_to() -> None:
    role = ROLES["sherlock"]
    history = (
        ChatMessage("user", "The gardener owns a crimson umbrella."),
        ChatMessage("assistant", "Indeed."),
    )
    texts = {
        plan_answer(_inputs(role, f"What about the {w}?", history)).text for w in ("boots", "letter", "dog")
    }
    assert any(re.search(r"crimson|gardener|umbrella", text) for text in texts)
    assert (
        plan_answer(_inputs(role, "What about the boots?", history)).text
        != plan_answer(_inputs(role, "What about the boots?")).text
    )


@pytest.mark.parametrize("name", sorted(ROLES))
def test_answers_speak_in_the_persona_voice_about_the_question(name: str) -> None:
    role = ROLES[name]
    persona = voice(role.persona)
    voice_markers = [
        *persona.openers,
        *persona.closers,
        *persona.catchphrases,
        *persona.interests,
        *persona.traits,
    ]
    for message in ("What do you make of the muddy boots?", "Tell me about the harbour lighthouse."):
        text = plan_answer(_inputs(role, message)).text
        assert any(marker.split()[0].strip(",.!") in text for marker in voice_markers), text
        assert re.search(r"muddy|boots|harbour|lighthouse", text), text
        assert "lorem" not in text.lower()


@pytest.mark.parametrize("name", sorted(ROLES))
def test_response_constraints_hold_for_many_messages(name: str) -> None:
    role = ROLES[name]
    limits = role.response_constraints
    banned = " ".join(limits.banned_words)
    for index in range(40):
        message = (
            f"Question {index}: is the {banned} {['lantern', 'poison', 'violin', 'radium'][index % 4]} real?"
        )
        text = plan_answer(_inputs(role, message)).text
        assert len(text) <= limits.max_length
        assert count_tokens(text) <= limits.max_tokens
        words = {w.lower() for w in re.findall(r"[\w'-]+", text)}
        assert not words & set(limits.banned_words), text


def test_tight_constraints_cut_the_answer() -> None:
    role = ROLES["curie"]
    tight = role.response_constraints.model_copy(update={"max_tokens": 5, "max_length": 20})
    text = plan_answer(_inputs(role, "Explain polonium please", constraints=tight)).text
    assert count_tokens(text) <= 5 and len(text) <= 20


def test_stream_tokens_join_to_the_same_text_as_infer() -> None:
    role = ROLES["grimble"]
    backend = SimulatorBackend()

    async def run() -> tuple[str, str, int, int]:
        whole = await backend.infer("m", _inputs(role, "Any news from the north road?"), 5_000)
        chunks = [
            c async for c in backend.infer_stream("m", _inputs(role, "Any news from the north road?"), 5_000)
        ]
        assert chunks[-1].usage is not None and all(c.usage is None for c in chunks[:-1])
        return (
            whole.text,
            "".join(c.text for c in chunks),
            whole.usage.output_tokens,
            chunks[-1].usage.output_tokens,
        )

    text, streamed, tokens, streamed_tokens = asyncio.run(run())
    assert streamed == text and streamed_tokens == tokens == count_tokens(text)


def test_a_plan_longer_than_the_timeout_raises_instead_of_answering() -> None:
    role = ROLES["sherlock"]
    slow = _inputs(role, "Slowly now", timing=SimulatorTiming(ttft_ms=5_000, tokens_per_second=10, seed=1))
    backend = SimulatorBackend()

    async def stream() -> list[str]:
        return [c.text async for c in backend.infer_stream("m", slow, 20)]

    with pytest.raises(InferenceTimeoutError):
        asyncio.run(backend.infer("m", slow, 20))
    with pytest.raises(InferenceTimeoutError):
        asyncio.run(stream())


def test_error_rate_one_fails_every_request_and_zero_none() -> None:
    role = ROLES["grimble"]
    failing = SimulatorBackend(FaultSettings(error_rate=1.0))
    with pytest.raises(InferenceError):
        asyncio.run(failing.infer("m", _inputs(role, "hello there"), 5_000))
    half = SimulatorBackend(FaultSettings(error_rate=0.5), fault_seed=7)
    again = SimulatorBackend(FaultSettings(error_rate=0.5), fault_seed=7)
    decisions = [half._should_fail() for _ in range(200)]
    assert decisions == [again._should_fail() for _ in range(200)]
    assert 60 < sum(decisions) < 140


def test_cpu_and_allocation_faults_run_their_named_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, list[float]] = {"cpu": [], "alloc": []}
    real_alloc = simulator_module._planted_allocations
    monkeypatch.setattr(simulator_module, "_planted_cpu_work", lambda us: calls["cpu"].append(us) or 0)
    monkeypatch.setattr(
        simulator_module, "_planted_allocations", lambda n: calls["alloc"].append(n) or real_alloc(n)
    )
    role = ROLES["sherlock"]
    backend = SimulatorBackend(FaultSettings(cpu_per_token_us=50, extra_allocations=1000))
    result = asyncio.run(backend.infer("m", _inputs(role, "Any footprints?"), 5_000))
    assert calls["cpu"] == [50] * len(tokenize(result.text))
    assert calls["alloc"] == [1000]
    assert len(real_alloc(1000)) == 1000


PLAIN_PROMPT = (
    "You are Brother Anselm, a gentle and curious monk who keeps bees and copies old manuscripts. "
    'You greet people with "Peace be with you" and end with "Go carefully, friend."'
)


def _plain_role() -> Role:
    document = ROLES["sherlock"].model_dump() | {"name": "anselm", "persona": PLAIN_PROMPT}
    return Role.model_validate(document)


def test_a_plain_text_persona_speaks_with_words_from_its_prompt() -> None:
    role = _plain_role()
    assert role.system_prompt() == PLAIN_PROMPT
    texts = [plan_answer(_inputs(role, f"What do you think of the {w}?")).text for w in ("storm", "harvest")]
    for text in texts:
        assert re.search(r"storm|harvest", text), text
        assert "Peace be with you" in text or "Go carefully, friend." in text, text
        assert re.search(r"gentle|curious|manuscripts|anselm|brother", text, re.IGNORECASE), text
    assert plan_answer(_inputs(role, "What of the storm?")) == plan_answer(
        _inputs(role, "What of the storm?")
    )


def test_a_plain_text_persona_without_descriptive_words_still_answers() -> None:
    role = Role.model_validate(ROLES["grimble"].model_dump() | {"persona": "Reply briefly."})
    text = plan_answer(_inputs(role, "Where is the mill?")).text
    assert "mill" in text and len(text) <= role.response_constraints.max_length


@pytest.mark.parametrize("name", ["sherlock", "curie", "grimble"])
def test_usage_counts_every_message_and_the_answer_word_by_word(name: str) -> None:
    # The plan counts the system prompt once per prompt text and the answer from its own
    # tokens; the figures must be what counting every message's text from scratch gives.
    history = (ChatMessage("user", "Where were you, at nine?"), ChatMessage("assistant", "At the club."))
    inputs = _inputs(ROLES[name], "And the dog, did it bark?", history)
    plan = plan_answer(inputs)
    assert plan.input_tokens == sum(count_tokens(m.content) for m in inputs.as_messages())
    assert plan.output_tokens == count_tokens(plan.text) > 0


def test_without_delays_no_timer_is_armed_and_the_answer_is_the_same() -> None:
    # The memory replay runs the simulator this way: every planned delay a bare yield, so the
    # event loop's work per request does not depend on the wall clock.
    slow = _inputs(ROLES["sherlock"], "Who took the pearl?", timing=SimulatorTiming(ttft_ms=50, jitter=0))

    async def run(delays: bool) -> tuple[list[str], float, int]:
        loop = asyncio.get_running_loop()
        armed = 0
        call_at = loop.call_at

        def counting_call_at(*args: object, **keywords: object) -> asyncio.TimerHandle:
            nonlocal armed
            armed += 1
            return call_at(*args, **keywords)  # type: ignore[arg-type]

        loop.call_at = counting_call_at  # type: ignore[method-assign]
        started = loop.time()
        backend = SimulatorBackend(delays=delays)
        pieces = [chunk.text async for chunk in backend.infer_stream("sim", slow, 60_000)]
        complete = await backend.infer("sim", slow, 60_000)
        assert "".join(pieces) == complete.text
        return pieces, loop.time() - started, armed

    yielded, quick, no_timers = asyncio.run(run(delays=False))
    slept, _, timers = asyncio.run(run(delays=True))
    assert yielded == slept
    assert no_timers == 0 and timers >= len(slept)
    assert quick < 0.1  # slept, the two answers take 50 ms for their first tokens alone, plus 25 ms a token
