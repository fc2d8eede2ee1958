"""What the HTTP routes need from the composed service, as one typed object on `app.state`.

The composition root (`rolescope.serving`) builds the parts and stores a
`ServiceComponents` — a subclass of `ServiceContext` carrying the add-ons too —
once as `app.state.components`. The routes read only this base view, so the
business layer names none of the add-ons it is composed with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from rolescope.service.chat import ChatService
from rolescope.service.shutdown import DrainSignal
from rolescope.service.ws_hub import OpenWebSockets


@dataclass(kw_only=True)
class ServiceContext:
    chat_service: ChatService
    drain: DrainSignal  # this app's own: set when its server starts shutting down
    websockets: OpenWebSockets = field(default_factory=OpenWebSockets)  # open chat sockets and their policy


def context_of(request: Request) -> ServiceContext:
    context = request.app.state.components
    if not isinstance(context, ServiceContext):
        raise TypeError(f"app.state.components is a {type(context).__name__}, not a ServiceContext")
    return context
