"""What the capturing proxy costs: TTFT and CPU through `rolescope capture` against going direct.

One role service (a simulator role quick to answer, 10 ms to first token,
then 20 tokens at 10 a second, so 50 streams stay open at a rate the service
sustains) and two proxies in front of it run side by side on
loopback: `capture` records every session (sample 1: every reply read, every
record redacted and written, the worst case) and `relay` records none (sample
0: the cost of relaying alone). 50 concurrent streams (`POST /v1/chat`,
`stream: true`, five turns a session, a message with an e-mail address to
redact, no think time) are sent direct, through
`relay` and through `capture` in turn, round after round in an order that
changes every round, so machine load drifting during the run hits all alike.

TTFT is the client's: from sending the request to the first `token` event.
Added TTFT is a variant's percentile minus direct's over the same rounds. CPU
per request is the proxy process's user + system time (/proc) over the
requests it relayed, next to the service's own over the direct requests.
Goal: at most 1 ms added TTFT p99 with capture on.

    python -m rolescope.bench capture_proxy [--quick]
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from rolescope.bench.telemetry_cost import round_order
from rolescope.procstats import process_cpu_seconds

STREAMS = 50
TURNS_PER_SESSION = 5
MESSAGE = "I am ada.lovelace@example.org; who took the bicycle from the shed last night?"


@dataclass
class Segment:
    ttft_s: list[float] = field(default_factory=list)
    failures: int = 0


def fast_role(folder: Path) -> Path:
    from rolescope.settings import bundled_roles_path

    role = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())
    role["inference"]["simulator"].update({"ttft_ms": 10, "tokens_per_second": 10, "jitter": 0})
    role["response_constraints"].update({"max_tokens": 20, "min_sentences": 1})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sherlock.yaml").write_text(yaml.safe_dump(role))
    return folder


async def _one_stream(client: httpx.AsyncClient, url: str, session: str, segment: Segment) -> None:
    body = {"message": MESSAGE, "session_id": session, "role": "sherlock", "stream": True}
    started = time.perf_counter()
    first: float | None = None
    try:
        async with client.stream("POST", f"{url}/v1/chat", json=body) as response:
            async for chunk in response.aiter_raw():
                if first is None and b"event: token" in chunk:
                    first = time.perf_counter() - started
            ok = response.status_code == 200
    except httpx.HTTPError:
        ok = False
    if ok and first is not None:
        segment.ttft_s.append(first)
    else:
        segment.failures += 1


async def drive(url: str, seconds: float, label: str) -> Segment:
    """STREAMS workers, each a chain of sessions of TURNS_PER_SESSION streamed turns, for `seconds`."""
    segment = Segment()
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=STREAMS * 2, max_keepalive_connections=STREAMS * 2)

    async def worker(index: int, client: httpx.AsyncClient) -> None:
        count = 0
        await asyncio.sleep(random.Random(index).uniform(0, 2.0))  # streams start spread, not in step
        while time.perf_counter() < deadline:
            session = f"bench-{label}-{index}-{count // TURNS_PER_SESSION}"
            await _one_stream(client, url, session, segment)
            count += 1

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(i, client) for i in range(STREAMS)))
    return segment


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(quick: bool = False) -> dict[str, float]:
    """Added TTFT (p50, p99) and proxy CPU per request, relay and capture against direct."""
    import uvloop

    from rolescope.capture.proxy_launcher import launch_proxy
    from rolescope.serving.launcher import launch_service

    seconds, rounds = (4.0, 2) if quick else (10.0, 4)
    env = {"ROLESCOPE_LOG_LEVEL": "warning", "ROLESCOPE_CONCURRENCY_LIMIT": "0"}
    ttft: dict[str, list[float]] = {"direct": [], "relay": [], "capture": []}
    failures = dict.fromkeys(ttft, 0)
    cpu = {"direct": 0.0, "relay": 0.0, "capture": 0.0}
    served = dict.fromkeys(cpu, 0)
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-") as tmp, ExitStack() as running:
        work = Path(tmp)
        service = running.enter_context(
            launch_service(roles_path=fast_role(work / "roles"), db_path=work / "s.db", env=env)
        )
        capture_env = {"ROLESCOPE_CAPTURE_KEY": "bench-capture-key-0123456789"}
        proxies = {
            name: running.enter_context(
                launch_proxy(
                    service.url,
                    out=work / f"{name}.jsonl",
                    extra_args=["--sample", sample, "--progress-every", "0"],
                    env=capture_env,
                    log_path=work / f"{name}.log",
                )
            )
            for name, sample in (("relay", "0"), ("capture", "1"))
        }
        urls = {"direct": service.url, **{name: proxy.url for name, proxy in proxies.items()}}
        for name, url in urls.items():  # warm-up: connections, imports, SQLite pages
            uvloop.run(drive(url, 1.0, f"warm-{name}"))
        for index in range(rounds):
            for name in round_order(list(urls), index):
                pid = proxies[name].pid if name in proxies else service.pid
                before = process_cpu_seconds(pid)
                segment = uvloop.run(drive(urls[name], seconds, f"{name}-{index}"))
                ttft[name] += segment.ttft_s
                failures[name] += segment.failures
                cpu[name] += process_cpu_seconds(pid) - before
                served[name] += len(segment.ttft_s) + segment.failures
        for proxy in proxies.values():
            proxy.stop()
        captured = sum(1 for _ in (work / "capture.jsonl").open())
    figures: dict[str, float] = {}
    print(
        f"capture proxy cost ({STREAMS} concurrent streams, POST /v1/chat SSE, "
        f"{rounds} interleaved rounds x {seconds:.0f} s per variant):"
    )
    direct_p50, direct_p99 = _percentile(ttft["direct"], 0.5), _percentile(ttft["direct"], 0.99)
    for name, values in ttft.items():
        p50, p99 = _percentile(values, 0.5), _percentile(values, 0.99)
        line = (
            f"  {name:<8} {len(values):6d} streams, {failures[name]} failed; "
            f"TTFT p50 {p50 * 1e3:6.2f} ms, p99 {p99 * 1e3:6.2f} ms"
        )
        cpu_ms = cpu[name] / max(served[name], 1) * 1e3
        if name == "direct":
            line += f"; service CPU {cpu_ms:.3f} ms/request"
            figures["service_cpu_ms_per_request"] = cpu_ms
        else:
            added_p50, added_p99 = (p50 - direct_p50) * 1e3, (p99 - direct_p99) * 1e3
            line += (
                f"; added p50 {added_p50:+.2f} ms, p99 {added_p99:+.2f} ms; proxy CPU {cpu_ms:.3f} ms/request"
            )
            figures[f"{name}_added_ttft_p50_ms"] = added_p50
            figures[f"{name}_added_ttft_p99_ms"] = added_p99
            figures[f"{name}_cpu_ms_per_request"] = cpu_ms
        print(line)
        figures[f"{name}_ttft_p99_ms"] = p99 * 1e3
    figures["capture_records_written"] = float(captured)
    print(f"  capture wrote {captured} records; goal: capture's added TTFT p99 <= 1 ms")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
