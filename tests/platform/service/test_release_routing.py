"""Release policy on real services: a sticky split over 2,000 sessions, two replicas that share
nothing and agree, pins by `name@version` and header, rules, greetings, version labels on metrics."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from rolescope.release_policy import rendezvous_version
from rolescope.serving.launcher import ServiceProcess
from rolescope.settings import bundled_roles_path

ServiceFactory = Callable[..., ServiceProcess]
SESSIONS = 2_000
WEIGHTS = {"1.2": 80.0, "1.3": 20.0}


def release_roles(folder: Path, *, extra_13: dict[str, object] | None = None) -> Path:
    """sherlock 1.2 (with the release policy) and 1.3, each answering at once."""
    folder.mkdir()
    base = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text(encoding="utf-8"))
    base["inference"]["simulator"].update(ttft_ms=0, tokens_per_second=100_000, jitter=0.0)
    base["response_constraints"].update(max_tokens=16)
    stable = {
        **base,
        "release": {
            "weights": WEIGHTS,
            "rules": [{"header": "X-Beta-Tester", "equals": "yes", "version": "1.3"}],
        },
    }
    (folder / "sherlock-1.2.yaml").write_text(yaml.safe_dump(stable), encoding="utf-8")
    canary = {**base, "version": "1.3", **(extra_13 or {})}
    (folder / "sherlock-1.3.yaml").write_text(yaml.safe_dump(canary), encoding="utf-8")
    return folder


def session_ids(count: int) -> list[str]:
    return [f"release-session-{index:05d}" for index in range(count)]


def first_turns(url: str, sessions: list[str]) -> dict[str, str]:
    """Each session's first turn; the version that answered it, by session."""

    def send(chunk: list[str]) -> dict[str, str]:
        answered = {}
        with httpx.Client(base_url=url, timeout=30) as client:
            for session in chunk:
                response = client.post("/v1/chat", json={"message": "Who?", "session_id": session})
                assert response.status_code == 200, response.text
                answered[session] = response.json()["role_version"]
        return answered

    chunks = [sessions[index::4] for index in range(4)]
    with ThreadPoolExecutor(4) as pool:
        return {k: v for part in pool.map(send, chunks) for k, v in part.items()}


@pytest.fixture
def replicas(tmp_path: Path, service_factory: ServiceFactory) -> tuple[ServiceProcess, ServiceProcess]:
    roles = release_roles(tmp_path / "roles")
    # Two processes, two databases: nothing shared but the role files.
    return service_factory(roles_path=roles), service_factory(roles_path=roles)


def test_sessions_split_by_weight_stay_on_their_version_and_replicas_agree(
    replicas: tuple[ServiceProcess, ServiceProcess],
) -> None:
    first, second = replicas
    sessions = session_ids(SESSIONS)
    on_first = first_turns(first.url, sessions)
    shares = Counter(on_first.values())
    assert set(shares) == {"1.2", "1.3"}
    # 2,000 sessions: a 20 % share has a standard error of 0.9 points; 4 points is over four of them.
    assert abs(shares["1.3"] / SESSIONS - 0.20) < 0.04, shares
    # The pure policy and the service agree on every session (the service hashes the same way).
    assert all(rendezvous_version("sherlock", s, WEIGHTS) == v for s, v in on_first.items())

    on_second = first_turns(second.url, sessions)
    assert on_second == on_first  # two replicas that share nothing agree on every session

    later = first_turns(first.url, sessions[:400])  # second turns of the same sessions
    assert later == {s: on_first[s] for s in sessions[:400]}  # sticky: 100 %
    history = httpx.get(f"{first.url}/v1/sessions/{sessions[0]}", timeout=10).json()
    assert len(history["turns"]) == 4

    metrics = httpx.get(f"{first.url}/metrics", timeout=10).text
    for version in ("1.2", "1.3"):
        assert f'role="sherlock",role_version="{version}"' in metrics
    ttft_lines = [line for line in metrics.splitlines() if line.startswith("gen_ai_server_request_duration")]
    assert {line.split('role_version="')[1].split('"')[0] for line in ttft_lines} == {"1.2", "1.3"}


def test_pins_rules_greetings_and_the_roles_list(tmp_path: Path, service_factory: ServiceFactory) -> None:
    service = service_factory(roles_path=release_roles(tmp_path / "roles"))
    url = service.url
    # A session the split sends to 1.2, and one it sends to 1.3.
    on_12 = next(s for s in session_ids(200) if rendezvous_version("sherlock", s, WEIGHTS) == "1.2")
    on_13 = next(s for s in session_ids(200) if rendezvous_version("sherlock", s, WEIGHTS) == "1.3")

    def version(session: str, role: str = "sherlock", **headers: str) -> str:
        response = httpx.post(
            f"{url}/v1/chat",
            json={"message": "Who?", "session_id": session, "role": role},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["role_version"])

    assert version(on_12) == "1.2" and version(on_13) == "1.3"
    assert version(on_12, role="sherlock@1.3") == "1.3"
    assert version(on_13, role="sherlock@1.2") == "1.2"
    assert version(on_12, **{"X-Role-Version": "1.3"}) == "1.3"
    assert version(on_12, **{"X-Beta-Tester": "yes"}) == "1.3"
    assert version(on_12, **{"X-Beta-Tester": "no"}) == "1.2"
    unknown = httpx.post(
        f"{url}/v1/chat", json={"message": "Who?"}, headers={"X-Role-Version": "9.9"}, timeout=30
    )
    assert unknown.status_code == 404 and "loaded versions: 1.2, 1.3" in unknown.text

    # A session opened by its greeting continues on the version that greeted.
    for _ in range(12):
        with httpx.stream("GET", f"{url}/v1/chat", params={"role": "sherlock"}, timeout=30) as stream:
            done = [line for line in stream.iter_lines() if line.startswith("data:")][-1]
        greeted = json.loads(done.removeprefix("data:"))
        expected = rendezvous_version("sherlock", greeted["session_id"], WEIGHTS)
        assert greeted["role_version"] == expected
        assert version(greeted["session_id"]) == expected

    # A new session without an id: the id the service makes is the one that is hashed.
    for _ in range(12):
        body = httpx.post(f"{url}/v1/chat", json={"message": "Who?"}, timeout=30).json()
        assert body["role_version"] == rendezvous_version("sherlock", body["session_id"], WEIGHTS)

    roles = httpx.get(f"{url}/v1/roles", timeout=10).json()["roles"]
    sherlock = next(r for r in roles if r["name"] == "sherlock")
    assert sherlock["version"] == "1.2"  # the primary (largest weight), not the highest version
    assert [(v["version"], v["weight"], v["default"]) for v in sherlock["versions"]] == [
        ("1.2", 80.0, True),
        ("1.3", 20.0, False),
    ]
