"""The guards every request passes: one log line, the body-size limit, the bearer token.

Raw ASGI (:class:`GuardMiddleware`), so that nothing reads a request around
them: the body is read once, bounded as it comes (a chunked body has no
length to check first), and replayed to the application.
"""

from __future__ import annotations

import logging
import secrets
import time

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threelines.serve.answers import problem

log = logging.getLogger("threelines.serve")

#: The environment variable of the bearer token.
TOKEN_ENV = "THREELINES_TOKEN"


class GuardMiddleware:
    """Log one line per request, bound the body, check the bearer token; raw ASGI, so nothing reads around it."""

    def __init__(self, app: ASGIApp, *, max_body: int, token: str | None):
        self.app, self.max_body, self.token = app, max_body, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard one request, then hand it on with its body read (and bounded)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status, state = time.perf_counter(), [0], scope.setdefault("state", {})

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                # The time spent in the service, for clients and benchmarks (RFC Server-Timing).
                took = f"app;dur={(time.perf_counter() - start) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        try:
            refusal = self._refuse(scope)
            if refusal is not None:
                await refusal(scope, receive, sending)
                return
            body = await self._read(receive)
            if body is None:
                await _limit_response(self.max_body)(scope, receive, sending)
                return
            await self.app(scope, _replay(body, receive), sending)
        finally:
            log.info(
                "%s %s %d %.1fms projects=%d",
                scope["method"],
                scope["path"],
                status[0],
                (time.perf_counter() - start) * 1000,
                state.get("projects", 0),
            )

    def _refuse(self, scope: Scope):
        """A 401 for an API call without the token, a 413 for a declared body over the limit; else None."""
        headers = dict(scope.get("headers") or [])
        # A CORS preflight (OPTIONS) carries no token by design: CORS answers it, and it runs nothing.
        if self.token and scope["path"].startswith("/v1/") and scope["method"] != "OPTIONS":
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not secrets.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                response = problem(
                    401, "Unauthorized", f"send the service's token: Authorization: Bearer <{TOKEN_ENV}>"
                )
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return _limit_response(self.max_body)
        return None

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (a chunked body has no length to check first)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _limit_response(max_body: int) -> JSONResponse:
    return problem(
        413,
        "Limit exceeded",
        f"the request body is more than the service's limit of {max_body:,} bytes "
        "(MAX_UPLOAD_BYTES, set with --max-upload); send a smaller file",
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then the client's own messages (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
