"""The target options of `rolescope load` (`--api`, `--header`, TLS, roles …), checked all at once."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from rolescope.client_tls import ClientTls
from rolescope.errors import ConfigError, RolescopeError
from rolescope.loadtests.targets.base import TargetOptions

# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
APIS = ("rolescope", "openai", "template", "websocket")
# The service keeps these sessions itself: no model, history or persona is sent.
_STATEFUL = ("rolescope", "websocket")


@dataclass
class TargetArgs:
    """The command line's target options, as typed."""

    api: str = "rolescope"
    template: Path | None = None
    model: str | None = None
    headers: list[str] = field(default_factory=list)
    api_key_env: str | None = None
    max_tokens: int | None = None
    ignore_eos: bool = False
    history_turns: int | None = None
    roles_path: Path | None = None
    roles: list[str] = field(default_factory=list)
    insecure: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    request_timeout: str = "60s"

    def timeout_s(self) -> float:
        """`--request-timeout` in seconds; a ConfigError unless it is a positive duration."""
        from rolescope.loadtests.load_config import parse_duration

        seconds = parse_duration(self.request_timeout)
        if seconds <= 0:
            raise ConfigError(f"--request-timeout {self.request_timeout!r} must be more than zero")
        return seconds


def parse_headers(values: list[str], problems: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, raw = value.partition(":")
        name = name.strip()
        if not sep or not _HEADER_NAME.match(name):
            problems.append(f"--header {value!r}: expected NAME:VALUE with a header name such as X-Tenant")
        elif "\r" in raw or "\n" in raw:
            problems.append(f"--header {name}: the value may not hold a line break")
        else:
            headers[name] = raw.strip()
    return headers


def _protocol_problems(args: TargetArgs) -> list[str]:
    problems: list[str] = []
    api = args.api
    if api == "template" and args.template is None:
        problems.append("--api template needs --template FILE (e.g. loadtests/templates/seed-chat.yaml)")
    if api != "template" and args.template is not None:
        problems.append(f"--template is read only with --api template (got --api {api})")
    if api in _STATEFUL and args.model is not None:
        problems.append(f"--model applies to --api openai or template; --api {api} takes a role")
    if api != "openai" and (args.max_tokens is not None or args.ignore_eos):
        problems.append(
            "--max-tokens and --ignore-eos apply to --api openai (a template puts such fields in its body)"
        )
    if api in _STATEFUL and (args.history_turns is not None or args.roles_path is not None):
        problems.append(
            "--history-turns and --roles-dir apply to stateless targets (--api openai or template): "
            "rolescope's service keeps each session's history and persona itself"
        )
    if args.insecure and args.ca_file is not None:
        problems.append("--insecure turns verification off; --ca gives a CA to verify with: choose one")
    problems += ClientTls(args.ca_file, args.client_cert, args.client_key).problems()
    if args.api_key_env is not None:
        if not _ENV_NAME.match(args.api_key_env):
            problems.append(f"--api-key-env {args.api_key_env!r}: expected an environment variable name")
        elif not os.environ.get(args.api_key_env, "").strip():
            problems.append(f"--api-key-env {args.api_key_env}: that variable is not set (or empty)")
    return problems


def target_options(args: TargetArgs) -> TargetOptions:
    """The validated options; a ConfigError lists every problem found, one a line."""
    if args.api not in APIS:
        raise ConfigError(f"--api {args.api!r} is not a target protocol; expected one of {', '.join(APIS)}")
    problems = _protocol_problems(args)
    headers = parse_headers(args.headers, problems)
    role_map: dict[str, str] = {}
    try:
        from rolescope.loadtests.role_selection import parse_role_selection

        role_map = parse_role_selection(args.roles)
    except ConfigError as exc:
        problems.append(str(exc))
    options = TargetOptions(
        api=args.api,  # type: ignore[arg-type]
        template=args.template,
        model=args.model,
        headers=headers,
        api_key_env=args.api_key_env,
        max_tokens=args.max_tokens,
        ignore_eos=args.ignore_eos,
        history_turns=args.history_turns,
        roles_path=args.roles_path,
        role_map=role_map,
        insecure=args.insecure,
        ca_file=args.ca_file,
        client_cert=args.client_cert,
        client_key=args.client_key,
    )
    problems += _file_problems(options)
    if problems:
        raise ConfigError("\n  ".join(["the target options are invalid:", *problems]))
    return options


def _file_problems(options: TargetOptions) -> list[str]:
    """Problems in the template and role files, read now rather than in every load process."""
    from rolescope.loadtests.targets.history import load_personas
    from rolescope.loadtests.targets.template_spec import load_template

    problems: list[str] = []
    if options.template is not None and options.api == "template":
        try:
            spec = load_template(options.template)
            if options.history_turns is not None and "history" not in spec.placeholders():
                problems.append(
                    f"--history-turns: {options.template} sends no {{history}}, so there is nothing to cap"
                )
        except RolescopeError as exc:
            problems.append(str(exc))
    try:
        load_personas(options.roles_path)
    except RolescopeError as exc:
        problems.append(str(exc))
    return problems
