"""The upload size limit, enforced while the body arrives (not after it is stored), and the bearer token,
checked before the body is read."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: a request to one of ``paths`` whose body is over ``limit`` bytes is answered 413.

    A declared ``Content-Length`` over the limit is refused before any byte is read; a body that grows past
    it (chunked, or a wrong length) stops the read with the same 413 (FastAPI re-raises an
    ``HTTPException`` raised while the body is parsed).
    """

    def __init__(self, app: ASGIApp, limit: int, paths: Sequence[str]) -> None:
        self.app, self.limit, self.paths = app, int(limit), tuple(paths)

    def _detail(self) -> str:
        return f"request body over the upload limit of {self.limit:,} bytes (--max-upload-mb)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await JSONResponse({"detail": self._detail()}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, self._detail())
            return message

        await self.app(scope, counted, send)


class TokenGate:
    """ASGI middleware: a request under ``prefix`` without ``Authorization: Bearer <token>`` is answered 401
    before any byte of its body is read (FastAPI's dependencies run only after a form body was received and
    spooled, so without this an unauthorised client could still fill the temporary storage).

    Args:
        app: the application behind the gate.
        token: the service's bearer token; None lets every request through.
        prefix: the paths it guards (the API; the page, ``/health`` and ``/ready`` stay open).
    """

    def __init__(self, app: ASGIApp, token: str | None, prefix: str = "/v1") -> None:
        self.app, self.token, self.prefix = app, token, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not secrets.compare_digest(given, b"Bearer " + self.token.encode()):
            response = JSONResponse(
                {"detail": "a valid bearer token is required"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
