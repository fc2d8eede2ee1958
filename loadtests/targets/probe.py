"""The one look at the target before a run: list what it serves, send a real turn the run's way.

I/O only; `preflight.judge_preflight` decides what the answers mean. Runs in
the CLI process with httpx (never gevent), with the same headers, key and TLS
settings the load processes will use.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from rolescope.client_tls import ClientTls
from rolescope.loadtests.load_config import UserKind
from rolescope.loadtests.role_selection import role_counts, select_roles, unknown_selected
from rolescope.loadtests.targets.base import (
    FrameReader,
    TargetAdapter,
    TargetOptions,
    TurnCall,
    bearer,
    http_error_text,
)
from rolescope.loadtests.targets.history import load_personas
from rolescope.loadtests.targets.openai import MODELS_PATH
from rolescope.loadtests.targets.preflight import Listing, ProbeResult, RunPlan, Trial
from rolescope.loadtests.targets.registry import api_key, make_adapter
from rolescope.loadtests.targets.template import TemplateAdapter
from rolescope.loadtests.traffic_format import TrafficRecord, read_traffic
from rolescope.loadtests.ws_sessions import WsSessions, client_tls

ROLES_PATH = "/v1/roles"
MAX_TRIALS = 6


def tls_verify(options: TargetOptions) -> bool | ssl.SSLContext:
    if options.client_cert is not None and options.client_key is not None:
        tls = ClientTls(options.ca_file, options.client_cert, options.client_key, options.insecure)
        return tls.ssl_context()
    if options.insecure:
        return False
    if options.ca_file is not None:
        return ssl.create_default_context(cafile=str(options.ca_file))
    return True


def plan_run(
    host: str,
    options: TargetOptions,
    records: list[TrafficRecord],
    sends_role: bool = True,
    stateless: bool = False,
) -> RunPlan:
    """What the run will ask of the target. `sends_role`: the target is told the role (or a model named
    after it); `stateless`: each call carries the conversation, so a persona could be sent with it."""
    traffic_roles = sorted(role_counts(records))
    selected = select_roles(records, options.role_map)
    counts = dict(role_counts(selected))
    personas = load_personas(options.roles_path)
    if options.api == "openai":
        needed = {options.model: sum(counts.values())} if options.model else counts
        served_as = "model"
    else:
        needed = counts if options.api in ("rolescope", "websocket") else {}
        served_as = "role"
    return RunPlan(
        api=options.api,
        host=host,
        requests_by_role=counts,
        served_as=served_as,  # type: ignore[arg-type]
        needed=needed,
        key_variable=options.key_variable(),
        key_sent=api_key(options) is not None,
        roles_path=str(options.roles_path) if options.roles_path else None,
        personas_missing=tuple(sorted(r for r in counts if options.roles_path and r not in personas)),
        personas_unsent=options.roles_path is None
        and stateless
        and ((options.api == "openai" and options.model is not None) or not sends_role),
        selection_unknown=tuple(unknown_selected(options.role_map, traffic_roles)),
        traffic_roles=tuple(traffic_roles),
    )


def _sends_role(options: TargetOptions, adapter: TargetAdapter) -> bool:
    return not isinstance(adapter, TemplateAdapter) or "role" in adapter.spec.placeholders()


def _lines(response: httpx.Response) -> Iterator[bytes]:
    pending = b""
    for chunk in response.iter_bytes():
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def _ws_trial(
    host: str, options: TargetOptions, timeout_s: float, adapter: TargetAdapter, call: TurnCall
) -> Trial:
    """One turn on a WebSocket of its own, opened and closed as a one-turn session would."""
    reader = adapter.stream_reader()
    if not isinstance(reader, FrameReader):
        raise TypeError(f"{type(reader).__name__} cannot read WebSocket frames")
    tls = client_tls(options.insecure, str(options.ca_file) if options.ca_file else None)
    outcome = WsSessions(host, timeout_s, tls).turn(call.session_id, adapter.request(call), reader, last=True)
    reply = reader.close(time.time())
    if outcome.failure is not None:
        return Trial(call.role, outcome.status or None, outcome.failure)
    return Trial(call.role, outcome.status, reply.error, reply.output_tokens)


def _trial(client: httpx.Client, adapter: TargetAdapter, call: TurnCall) -> Trial:
    request = adapter.request(call)
    try:
        with client.stream(
            request.method, request.path, content=request.body, headers=dict(request.headers)
        ) as response:
            if not 200 <= response.status_code < 300:
                return Trial(
                    call.role, response.status_code, http_error_text(response.status_code, response.read())
                )
            if request.stream:
                reader = adapter.stream_reader()
                for line in _lines(response):
                    reader.feed(line, time.time())
                reply = reader.close(time.time())
            else:
                reply = adapter.read_body(response.read())
    except httpx.HTTPError as exc:
        return Trial(call.role, None, f"{type(exc).__name__}: {exc}"[:200])
    return Trial(call.role, response.status_code, reply.error, reply.output_tokens)


def _listing(client: httpx.Client, path: str, headers: dict[str, str]) -> Listing:
    response = client.get(path, headers=headers)
    names: tuple[str, ...] | None = None
    try:
        body: Any = response.json()
        if path == ROLES_PATH:
            names = tuple(str(item["name"]) for item in body["roles"])
        else:
            names = tuple(str(item["id"]) for item in body["data"])
    except (ValueError, KeyError, TypeError):
        names = None
    if not 200 <= response.status_code < 300:
        names = None
    return Listing(path, response.status_code, names)


def _trial_roles(
    roles: list[str], options: TargetOptions, listing: Listing | None, per_role: bool
) -> list[str]:
    """One role the target serves (a listing says which), or every role when only trials can tell."""
    if per_role:
        return roles[:MAX_TRIALS]

    def served(role: str) -> bool:
        name = (options.model or role) if options.api == "openai" else role
        return listing is None or listing.names is None or name in listing.names

    return ([role for role in roles if served(role)] or roles)[:1]


def _trial_calls(
    records: list[TrafficRecord], options: TargetOptions, user: UserKind, roles: list[str]
) -> list[TurnCall]:
    first: dict[str, TrafficRecord] = {}
    for record in select_roles(records, options.role_map):
        first.setdefault(record.role, record)
    personas = load_personas(options.roles_path)
    session = f"preflight-{secrets.token_hex(6)}"
    calls = []
    for role in roles:
        record = first[role]
        stream = {"stream": True, "chat": False, "replay": record.stream}[user]
        calls.append(TurnCall(record.message, role, session, stream, persona=personas.get(role)))
    return calls


def check_target(
    host: str,
    options: TargetOptions,
    traffic: Path | None,
    user: UserKind,
    timeout_s: float,
    roles_selectable: bool = True,
    roles_option: str = "--roles",
) -> tuple[RunPlan, ProbeResult]:
    """The run's plan and what the target answered to one listing and a few real turns."""
    records = read_traffic(traffic)
    adapter = make_adapter(options)
    sends_role = _sends_role(options, adapter)
    plan = replace(
        plan_run(host, options, records, sends_role, adapter.stateless),
        roles_selectable=roles_selectable,
        roles_option=roles_option,
    )
    headers = bearer({"Accept": "application/json", **options.headers}, api_key(options))
    list_path = {"rolescope": ROLES_PATH, "websocket": ROLES_PATH, "openai": MODELS_PATH}.get(options.api)
    try:
        with httpx.Client(base_url=host, timeout=timeout_s, verify=tls_verify(options)) as client:
            listing = _listing(client, list_path, headers) if list_path else None
            # Without a listing, only one trial per role can tell which roles a template target serves.
            roles = _trial_roles(
                list(plan.requests_by_role), options, listing, per_role=list_path is None and sends_role
            )
            calls = _trial_calls(records, options, user, roles)

            def attempt(call: TurnCall) -> Trial:
                if adapter.transport == "websocket":
                    return _ws_trial(host, options, timeout_s, adapter, call)
                return _trial(client, adapter, call)

            with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
                trials = tuple(pool.map(attempt, calls))
    except httpx.HTTPError as exc:
        return plan, ProbeResult(unreachable=f"{type(exc).__name__}: {exc}"[:300])
    if listing is None and trials and all(t.status is None for t in trials):
        return plan, ProbeResult(unreachable=trials[0].error)
    return plan, ProbeResult(listing=listing, trials=trials)
