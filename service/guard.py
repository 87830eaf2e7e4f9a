"""What the service checks of a request before the app reads its body: the admin token and the body's size; and HEAD.

A pure ASGI middleware, so that nothing (FastAPI's body parsing, a
dependency) has read a byte of the body when it decides:

- /admin/...: without `Authorization: Bearer <token>`, 401 (with
  WWW-Authenticate); with a wrong token, 403 (compared in constant time).
  A malformed body sent without the token is a 401, never a 422.
- Any request: a Content-Length over the limit is a 413 at once, unread; a
  body without one (chunked) is counted as the app receives it, and refused
  with 413 once past the limit.
- HEAD is answered as GET is, headers and all, without the body (FastAPI's
  routes answer only the methods they name).
"""

from __future__ import annotations

import hmac
from typing import Optional

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_PREFIX = "/admin"
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="hansard-search admin"'}


def token_refusal(authorization: Optional[str], expected: bytes) -> Optional[HTTPException]:
    """Why an Authorization header does not carry the admin token (401 or 403), or None when it does."""
    scheme, _, credentials = (authorization or "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return HTTPException(401, "Authorization: this endpoint needs an `Authorization: Bearer <token>` header",
                             headers=BEARER_CHALLENGE)
    if not hmac.compare_digest(credentials.encode("utf-8"), expected):
        return HTTPException(403, "Authorization: the bearer token is not valid")
    return None


class BodyTooLarge(HTTPException):
    """A body past the limit (413). FastAPI passes an HTTPException raised while it reads a body on to its handler."""

    def __init__(self, limit: int):
        super().__init__(413, f"body: larger than the {limit / 1024 / 1024:g} MB this service accepts (HANSARD_MAX_BODY_MB)")


class RequestGuard:
    """Checks the admin token and the body's size before the app reads the body; answers HEAD as GET without a body."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, admin_token: Optional[str] = None):
        self.app = app
        self.max_body = max_body_bytes
        self.admin_token = admin_token.encode("utf-8") if admin_token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _answer(refusal, scope, receive, send)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        head = scope["method"] == "HEAD"

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        if head:
            # The same scope object, so that what the layers outside record of
            # it (the route matched) is still there; HEAD again once answered.
            scope["method"] = "GET"
        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as err:  # read by something that does not turn it into an answer itself
            if started:
                raise
            await _answer(err, scope, receive, watched_send)
        finally:
            if head:
                scope["method"] = "HEAD"

    def _refusal(self, scope: Scope, headers: Headers) -> Optional[HTTPException]:
        path = scope["path"].removeprefix(scope.get("root_path", ""))  # as the router matches it
        if self.admin_token is not None and (path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")):
            refusal = token_refusal(headers.get("authorization"), self.admin_token)
            if refusal is not None:
                return refusal
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_body:
            return BodyTooLarge(self.max_body)
        return None


async def _answer(err: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
    """The app's own error shape: {"message": ...}."""
    await JSONResponse({"message": err.detail}, status_code=err.status_code, headers=err.headers)(scope, receive, send)
