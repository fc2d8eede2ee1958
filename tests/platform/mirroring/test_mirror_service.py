"""Shadow mirroring in a real `rolescope serve`: the client gets the primary's answer, the candidate
gets a copy; slow, failing and unreachable candidates are counted and never reach the user."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rolescope.mirroring.pairs import read_pairs
from rolescope.settings import bundled_roles_path

ServiceFactory = Callable[..., object]


async def _slow(request: Request) -> JSONResponse:
    await asyncio.sleep(3)
    return JSONResponse({"content": "late", "confidence_score": 0.5, "usage": {"output_tokens": 1}})


async def _failing(request: Request) -> JSONResponse:
    return JSONResponse({"error": {"code": "boom", "message": "candidate broke"}}, status_code=500)


CANDIDATES = Starlette(routes=[Route("/slow/v1/chat", _slow, methods=["POST"]),
                               Route("/fail/v1/chat", _failing, methods=["POST"])])


def _roles(folder: Path, mirrors: dict[str, dict[str, object]]) -> Path:
    folder.mkdir()
    for source in sorted(bundled_roles_path().glob("*.yaml")):
        document = yaml.safe_load(source.read_text())
        document["inference"]["simulator"].update(ttft_ms=5, tokens_per_second=5000)
        if document["name"] in mirrors:
            document["mirror"] = mirrors[document["name"]]
        (folder / source.name).write_text(yaml.safe_dump(document))
    candidate = yaml.safe_load((folder / "sherlock.yaml").read_text())
    candidate.pop("mirror", None)
    candidate["version"] = "1.1"  # below 1.2, which stays the default
    candidate["persona"]["catchphrases"] = ["A new catchphrase, Watson."]
    (folder / "sherlock-1.1.yaml").write_text(yaml.safe_dump(candidate))
    return folder


def _mirror_counts(url: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("rolescope_mirror_requests_total{"):
            outcome = line.split('outcome="')[1].split('"')[0]
            counts[outcome] = float(line.split()[-1])
    return counts


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "mirrors were not counted in time"
        time.sleep(0.1)


def _chat(
    url: str, role: str, message: str, session_id: str | None = None
) -> tuple[dict[str, object], float]:
    started = time.perf_counter()
    body: dict[str, object] = {"message": message, "role": role}
    if session_id:
        body["session_id"] = session_id
    response = httpx.post(f"{url}/v1/chat", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json(), time.perf_counter() - started


def test_mirrors_reach_their_candidate_and_never_the_user(
    tmp_path: Path, service_factory: ServiceFactory, asgi_server: Callable[..., object], free_port: int
) -> None:
    candidates = asgi_server(CANDIDATES)
    base = candidates.url  # type: ignore[attr-defined]
    down = f"http://127.0.0.1:{free_port}"  # nothing listens there
    folder = _roles(tmp_path / "roles", {
        "sherlock": {"to": "sherlock@1.1", "share": 1.0},
        "curie": {"to": f"{base}/slow", "share": 1.0, "max_concurrency": 2, "timeout_ms": 1000},
        "grimble": {"to": f"{base}/fail", "share": 1.0},
        "storyteller": {"to": down, "share": 1.0},
    })
    pairs_path = tmp_path / "pairs.jsonl"
    service = service_factory(
        roles_path=folder, extra_args=["--mirror-pairs", str(pairs_path)],
        env={"ROLESCOPE_CAPTURE_KEY": "k" * 32},
    )
    url = service.url  # type: ignore[attr-defined]

    # In-process candidate: same history, no session writes, a redacted pair per exchange.
    first, _ = _chat(url, "sherlock", "Write to holmes@example.com about the pearl.")
    session = str(first["session_id"])
    for turn in range(3):
        _chat(url, "sherlock", f"And the dog, clue {turn}?", session)
    _wait_for(lambda: _mirror_counts(url).get("ok", 0) == 4)
    turns = httpx.get(f"{url}/v1/sessions/{session}", timeout=10).json()["turns"]
    assert len(turns) == 8  # the user's four exchanges, not one more
    assert all("A new catchphrase" not in t["content"] for t in turns)  # 1.1 never answers the user
    _wait_for(lambda: pairs_path.exists() and len(pairs_path.read_text().splitlines()) == 4)
    pairs = read_pairs(pairs_path)
    assert {(p.primary.version, p.candidate.version, p.outcome) for p in pairs} == {("1.2", "1.1", "ok")}
    assert "holmes@example.com" not in pairs_path.read_text() and "<EMAIL_1>" in pairs[0].message
    assert all(p.candidate.content and p.primary.content for p in pairs)

    # A slow candidate: the primary keeps its speed; two mirrors time out, the rest are shed.
    latencies = [_chat(url, "curie", "What is radium?")[1] for _ in range(8)]
    assert max(latencies) < 1.0
    _wait_for(lambda: _mirror_counts(url).get("timeout", 0) + _mirror_counts(url)["shed"] == 8)
    assert _mirror_counts(url)["timeout"] >= 2 and _mirror_counts(url)["shed"] >= 1

    # A failing candidate and one that is down: counted as failed, the user never sees it.
    for role in ("grimble", "storyteller"):
        for _ in range(3):
            reply, _ = _chat(url, role, "Hello there")
            assert reply["content"]
    _wait_for(lambda: _mirror_counts(url).get("failed", 0) == 6)
    assert _mirror_counts(url)["ok"] == 4
    records = [json.loads(line) for line in pairs_path.read_text().splitlines()]
    assert sorted({r["candidate"]["status"] for r in records if r["outcome"] == "failed"}) == [0, 500]


def test_a_mirror_to_a_version_that_is_not_loaded_is_refused_at_start_up(tmp_path: Path) -> None:
    from rolescope.errors import ConfigError
    from rolescope.roles import load_roles

    folder = _roles(tmp_path / "roles", {"curie": {"to": "curie@9.9", "share": 0.5}})
    with pytest.raises(ConfigError, match=r"curie@2.0: mirror.to 'curie@9.9': role 'curie' has no version"):
        load_roles(folder)
