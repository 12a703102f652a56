"""The upload size limit, enforced while the body arrives (not after it is stored)."""

from __future__ import annotations

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
