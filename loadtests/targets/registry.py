"""The one place that knows every target protocol: `--api` name to adapter."""

from __future__ import annotations

import os
from collections.abc import Callable

from rolescope.loadtests.targets.base import ApiName, TargetAdapter, TargetOptions
from rolescope.loadtests.targets.openai import OpenAIAdapter
from rolescope.loadtests.targets.rolescope import RolescopeAdapter
from rolescope.loadtests.targets.template import TemplateAdapter
from rolescope.loadtests.targets.websocket import WebSocketAdapter

AdapterFactory = Callable[[TargetOptions, str | None], TargetAdapter]

ADAPTERS: dict[ApiName, AdapterFactory] = {
    "rolescope": RolescopeAdapter,
    "openai": OpenAIAdapter,
    "template": TemplateAdapter,
    "websocket": WebSocketAdapter,
}


def api_key(options: TargetOptions) -> str | None:
    """The key from the options' environment variable; read at run time, never stored with a run."""
    return os.environ.get(options.key_variable(), "").strip() or None


def make_adapter(options: TargetOptions) -> TargetAdapter:
    return ADAPTERS[options.api](options, api_key(options))
