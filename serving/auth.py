"""API keys and roles: ``scorer`` (score, ingest), ``reviewer`` (read scores, send feedback),
``admin`` (everything, keys, reload). Keys are stored hashed; see :mod:`serving.repository`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.errors import ServiceError
from serving.middleware import refuse_unread

ROLES = ("scorer", "reviewer", "admin")
NO_KEY = "an API key is required: send 'Authorization: Bearer <key>'"
BAD_KEY = "the API key is not valid or was revoked"
# Methods whose body the gate keeps unread until the key is known to be valid.
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key.")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name and role, never the key."""

    name: str
    role: str


def require_roles(*roles: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting keys of the given roles: 401 without a valid key, 403 otherwise."""

    async def dependency(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        header_key: str | None = Depends(_header),
    ) -> Caller:
        key = bearer.credentials if bearer is not None else header_key
        if not key:
            raise ServiceError(401, NO_KEY)
        caller = await run_in_threadpool(request.app.state.service.authenticate, key)
        if caller is None:
            raise ServiceError(401, BAD_KEY)
        if caller.role not in roles:
            raise ServiceError(
                403, f"a {caller.role} key may not do this; it needs {' or '.join(roles)}"
            )
        return caller

    return dependency


def presented_key(headers: Headers) -> str | None:
    """The key a request carries, as the route dependencies read it (Bearer, else X-API-Key)."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


class KeyGate:
    """Refuses an API request that carries a body without a valid key, before the body is read.

    FastAPI reads and parses a body before it runs a route's dependencies, so without this a
    caller with no key could make the service parse up to the body limit. Roles are still
    checked by the route's dependency (the key check is cached, so it costs nothing twice).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _gated(scope):
            refusal = await _refusal(scope)
            if refusal:
                await _refuse(scope, send, *refusal)
                return
        await self.app(scope, receive, send)


def _gated(scope: Scope) -> bool:
    return (
        scope["type"] == "http"
        and scope["method"] in METHODS_WITH_BODY
        and scope["path"].startswith("/v1/")
    )


async def _refusal(scope: Scope) -> tuple[int, str] | None:
    """Why the request is refused (status and detail), or None when its key is valid."""
    service = getattr(scope["app"].state, "service", None)
    if service is None:  # not started: the routes answer as they would
        return None
    key = presented_key(Headers(scope=scope))
    if not key:
        return 401, NO_KEY
    try:
        caller = await run_in_threadpool(service.authenticate, key)
    except ServiceError as exc:  # keys cannot be checked now (the database is away)
        return exc.status_code, str(exc.detail)
    return None if caller else (401, BAD_KEY)


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    request_id = scope.get("state", {}).get("request_id")
    challenge = [(b"www-authenticate", b"Bearer")] if status == 401 else []
    await refuse_unread(send, status, detail, request_id, challenge)
