"""`Allow` on 405 answers lists every method the path supports (RFC 9110 §15.5.6).

Starlette answers 405 from the first route whose path matches, so for `/v1/chat` (a GET route
and a POST route) it would say `Allow: POST` only. This middleware replaces the header with every
method for which some route of the app fully matches the path. Routes are asked through their
public `matches()` only, so plain routes, mounts and FastAPI's included routers all answer alike.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# OPTIONS and TRACE are never served by a route here; CONNECT is not an origin-server method.
CANDIDATE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> set[str]:
    return {
        method
        for method in CANDIDATE_METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    }


class AllowHeaderMiddleware:
    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = allowed_methods(self.routes, scope)
                if methods:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    headers.append((b"allow", ", ".join(sorted(methods)).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)
