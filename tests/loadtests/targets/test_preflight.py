"""The pure parts around a run's target: findings from a probe, --roles, conversations, CLI options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rolescope.commands.load_target import TargetArgs, target_options
from rolescope.errors import ConfigError
from rolescope.loadtests.role_selection import parse_role_selection, select_roles
from rolescope.loadtests.targets.base import Exchange, TurnCall
from rolescope.loadtests.targets.history import ConversationBook, chat_messages
from rolescope.loadtests.targets.preflight import (
    Finding,
    Listing,
    ProbeResult,
    RunPlan,
    Trial,
    judge_preflight,
)
from rolescope.loadtests.traffic_format import read_traffic

PLAN = RunPlan(
    api="rolescope",
    host="http://h",
    requests_by_role={"sherlock": 6, "curie": 3, "grimble": 1},
    needed={"sherlock": 6, "curie": 3, "grimble": 1},
    key_variable="K",
    traffic_roles=("curie", "grimble", "sherlock"),
)


def test_unserved_roles_are_one_finding_with_their_share_and_a_way_out() -> None:
    probe = ProbeResult(
        listing=Listing("/v1/roles", 200, ("sherlock",)),
        trials=(Trial("curie", 404, "HTTP 404: unknown_role"),),
    )
    assert judge_preflight(PLAN, probe) == [
        Finding(
            "error",
            "the traffic names roles the target does not serve: curie (3 of 10 requests, 30%); "
            "grimble (1 of 10 requests, 10%); it serves sherlock. These requests would fail "
            "(404 unknown role); keep or map roles with --roles sherlock or --roles curie=sherlock",
        )
    ]


def test_a_command_without_roles_selection_is_not_told_to_use_it() -> None:
    probe = ProbeResult(listing=Listing("/v1/roles", 200, ("sherlock",)))
    [finding] = judge_preflight(replace(PLAN, roles_selectable=False), probe)
    assert finding.text.endswith("serve them, or replay only the roles served (rolescope load --roles)")


def test_everything_wrong_is_said_at_once() -> None:
    plan = RunPlan(
        api="openai",
        host="http://h",
        requests_by_role={},
        served_as="model",
        needed={"m": 1},
        key_variable="OPENAI_API_KEY",
        roles_path="roles/",
        personas_missing=("curie",),
        selection_unknown=("watson",),
        traffic_roles=("curie",),
    )
    probe = ProbeResult(listing=Listing("/v1/models", 403, None), trials=(Trial("curie", 403, "HTTP 403"),))
    texts = [f.text for f in judge_preflight(plan, probe)]
    assert texts == [
        "--roles names watson, which the traffic never does (it names curie)",
        "no traffic is left to send after --roles",
        "no role file in roles/ gives a persona for curie",
        "the target wants an API key (HTTP 403) and none was sent: put it in $OPENAI_API_KEY "
        "(or name another variable with --api-key-env)",
    ]


def test_unreachable_target_and_foreign_protocol_are_plain_errors_and_unlisted_models_a_warning() -> None:
    down = judge_preflight(PLAN, ProbeResult(unreachable="ConnectError: refused"))
    assert down == [Finding("error", "cannot reach http://h: ConnectError: refused")]
    foreign = judge_preflight(PLAN, ProbeResult(listing=Listing("/v1/roles", 404, None)))
    assert "does not speak rolescope's API; try --api openai or --api template" in foreign[0].text
    openai_plan = RunPlan(api="openai", host="http://h", requests_by_role={"a": 1}, served_as="model")
    unlisted = judge_preflight(openai_plan, ProbeResult(listing=Listing("/v1/models", 404, None)))
    assert [f.severity for f in unlisted] == ["warning"]
    broken = judge_preflight(
        openai_plan, ProbeResult(trials=(Trial("a", 200, "stream ended without [DONE]"),))
    )
    assert broken == [Finding("error", "a trial turn for a failed: stream ended without [DONE]")]


def test_roles_keep_and_map(tmp_path: Path) -> None:
    assert parse_role_selection(["sherlock,curie=sherlock", " grimble = curie "]) == {
        "sherlock": "sherlock",
        "curie": "sherlock",
        "grimble": "curie",
    }
    with pytest.raises(ConfigError) as caught:
        parse_role_selection(["a=b", "a=c", "x=y=z"])
    assert "a is mapped twice (b and c)" in str(caught.value) and "'x=y=z'" in str(caught.value)
    records = read_traffic()
    kept = select_roles(records, {"sherlock": "sherlock", "curie": "sherlock"})
    assert {r.role for r in kept} == {"sherlock"}
    assert len(kept) == sum(1 for r in records if r.role in ("sherlock", "curie"))
    assert select_roles(records, {}) == records


def test_conversation_book_keeps_answered_turns_in_order_and_caps_them() -> None:
    book = ConversationBook(limit=2)
    assert book.history("s", 0) == ()
    for turn in range(4):
        book.record("s", turn, f"m{turn}", f"r{turn}")
    assert book.history("s", 3) == (Exchange("m1", "r1"), Exchange("m2", "r2"))
    assert ConversationBook(limit=0).history("s", 3) == ()
    book.history("s", 0)  # a new pass of the session starts afresh
    assert book.history("s", 2) == () and len(book) == 0
    call = TurnCall("now", "r", "s", False, (Exchange("a", "b"),), None)
    assert chat_messages(call) == [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "now"},
    ]


def test_cli_target_options_list_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError) as caught:
        target_options(
            TargetArgs(
                api="rolescope",
                model="m",
                max_tokens=5,
                headers=["Bad Header:1", "X-Ok:fine", "NoColon"],
                api_key_env="NOT_SET_ANYWHERE",
                insecure=True,
                ca_file=tmp_path / "ca.pem",
                history_turns=3,
            )
        )
    text = str(caught.value)
    for expected in (
        "--model applies to --api openai or template",
        "--max-tokens and --ignore-eos apply to --api openai",
        "--history-turns and --roles-dir apply to stateless targets",
        "--insecure turns verification off; --ca gives a CA to verify with",
        f"--ca {tmp_path / 'ca.pem'}: no such file",
        "--api-key-env NOT_SET_ANYWHERE: that variable is not set",
        "--header 'Bad Header:1': expected NAME:VALUE",
        "--header 'NoColon': expected NAME:VALUE",
    ):
        assert expected in text
    with pytest.raises(ConfigError, match="--api template needs --template FILE"):
        target_options(TargetArgs(api="template"))
    with pytest.raises(ConfigError, match="'grpc' is not a target protocol"):
        target_options(TargetArgs(api="grpc"))
    options = target_options(TargetArgs(api="openai", headers=["Authorization: Bearer x", "X-Tenant: a"]))
    assert options.headers == {"Authorization": "Bearer x", "X-Tenant": "a"}
    assert options.shown()["headers"] == {"Authorization": "***", "X-Tenant": "a"}
    assert options.key_variable() == "OPENAI_API_KEY"
