"""The target options (`--api`, `--model`, `--header`, TLS, roles …), declared once for every command.

`rolescope load`, `tune` and `capacity` speak to a target the same way, so they
take the same options with the same help. `with_target_options` adds them to a
command's signature (typer reads the signature) and hands the command one
`TargetArgs` instead of fifteen parameters, so a new option or a better help
text reaches all three at once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

ROLES_HELP = (
    "Keep or map the traffic's roles: sherlock keeps only sherlock; curie=sherlock sends "
    "curie's traffic to sherlock (repeatable or comma-separated)."
)


@dataclass(frozen=True)
class _Flag:
    name: str  # the parameter's name, also TargetArgs' field unless `field` says otherwise
    annotation: Any
    option: Any  # a typer.Option
    field: str | None = None


def _flags(roles_flag: str) -> list[_Flag]:
    return [
        _Flag(
            "api",
            str,
            typer.Option(
                "rolescope",
                "--api",
                help="Target protocol: rolescope (POST /v1/chat) | openai (/v1/chat/completions) | template"
                " | websocket (/v1/ws, one connection per session).",
            ),
        ),
        _Flag(
            "template",
            Path | None,
            typer.Option(
                None, "--template", help="With --api template: the template YAML.", show_default=False
            ),
        ),
        _Flag(
            "model",
            str | None,
            typer.Option(
                None,
                "--model",
                help="Model to ask for (openai, {model} in a template); default: the traffic's role name.",
                show_default=False,
            ),
        ),
        _Flag(
            "header",
            list[str],
            typer.Option(
                [], "--header", help="An extra request header, NAME:VALUE (repeatable).", show_default=False
            ),
            field="headers",
        ),
        _Flag(
            "api_key_env",
            str | None,
            typer.Option(
                None,
                "--api-key-env",
                help="Environment variable holding the API key, sent as a Bearer token "
                "(default: OPENAI_API_KEY for openai, ROLESCOPE_LOAD_API_KEY otherwise; unset: no key).",
                show_default=False,
            ),
        ),
        _Flag(
            "max_tokens",
            int | None,
            typer.Option(
                None, "--max-tokens", min=1, help="openai: max_tokens of every request.", show_default=False
            ),
        ),
        _Flag(
            "ignore_eos", bool, typer.Option(False, "--ignore-eos", help="openai: send ignore_eos (vLLM).")
        ),
        _Flag(
            "history_turns",
            int | None,
            typer.Option(
                None,
                "--history-turns",
                min=0,
                help="Stateless targets: resend at most this many earlier exchanges (default: all).",
                show_default=False,
            ),
        ),
        _Flag(
            "roles_dir",
            Path | None,
            typer.Option(
                None,
                "--roles-dir",
                "--role-file",
                help="Stateless targets (openai, template): role file or folder whose personas are sent "
                "as the system message.",
                show_default=False,
            ),
            field="roles_path",
        ),
        _Flag(
            "target_roles",
            list[str],
            typer.Option([], roles_flag, help=ROLES_HELP, show_default=False),
            field="roles",
        ),
        _Flag(
            "request_timeout",
            str,
            typer.Option("60s", "--request-timeout", help="Timeout of one request."),
        ),
        _Flag(
            "insecure",
            bool,
            typer.Option(False, "--insecure", help="Do not verify the target's TLS certificate."),
        ),
        _Flag(
            "ca",
            Path | None,
            typer.Option(None, "--ca", help="Verify TLS with this CA bundle (PEM).", show_default=False),
            field="ca_file",
        ),
        _Flag(
            "client_cert",
            Path | None,
            typer.Option(
                None,
                "--client-cert",
                help="Present this PEM certificate (mutual TLS); needs --client-key.",
                show_default=False,
            ),
        ),
        _Flag(
            "client_key",
            Path | None,
            typer.Option(
                None, "--client-key", help="The PEM private key of --client-cert.", show_default=False
            ),
        ),
    ]


def with_target_options(roles_flag: str = "--roles") -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Adds the target options to a typer command, which receives them as `target_args: TargetArgs`.

    `roles_flag` names the role selection: `--roles` where the command launches no
    service, `--target-roles` where `--roles` already names the role files served.
    """
    flags = _flags(roles_flag)

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != "target_args"]
        added = [
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=f.option, annotation=f.annotation
            )
            for f in flags
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            from rolescope.commands.load_target import TargetArgs

            fields = {f.field or f.name: kwargs.pop(f.name) for f in flags}
            command(**kwargs, target_args=TargetArgs(**fields))

        annotations = {k: v for k, v in command.__annotations__.items() if k != "target_args"}
        wrapper.__annotations__ = {**annotations, **{f.name: f.annotation for f in flags}}
        wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
        )
        return wrapper

    return decorate
