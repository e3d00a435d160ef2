"""API keys and roles: ``scorer`` (score, ingest), ``reviewer`` (read scores, send feedback),
``admin`` (everything, keys, reload). Keys are stored hashed; see :mod:`serving.repository`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import ServiceError
from serving.middleware import refuse_unread
from serving.records import Role
from serving.refusals import COUNTED_AFTER_ANSWER, RefusalThrottle, address_sender, key_sender

ROLES = tuple(Role)
NO_KEY = "an API key is required: send 'Authorization: Bearer <key>'"
BAD_KEY = "the API key is not valid or was revoked"
TOO_MANY_REFUSALS = (
    "too many refused requests from this sender in the last minute; wait for Retry-After "
    "seconds and send only what the service can take"
)
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
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_header)],
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
    Refusals are counted per sender, and a sender refused too often is slowed
    (:mod:`serving.refusals`).
    """

    def __init__(self, app: ASGIApp, refusals: RefusalThrottle) -> None:
        self.app = app
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = getattr(scope["app"].state, "service", None)
        if not _gated(scope) or service is None:  # not started: the routes answer as they would
            await self.app(scope, receive, send)
            return
        refusal, caller = await _refusal(service, scope)
        sender = key_sender(caller.name) if caller else address_sender(scope.get("client"))
        retry_after = self.refusals.retry_after(sender)
        if retry_after is not None:
            await self.refusals.pause()
            await _refuse(scope, send, 429, TOO_MANY_REFUSALS, retry_after)
            return
        if refusal:
            if refusal[0] == 401:
                self.refusals.refused(sender)
            await _refuse(scope, send, *refusal)
            return
        await self.app(scope, receive, _counting(send, self.refusals, sender))


def _gated(scope: Scope) -> bool:
    return (
        scope["type"] == "http"
        and scope["method"] in METHODS_WITH_BODY
        and scope["path"].startswith("/v1/")
    )


async def _refusal(service: Any, scope: Scope) -> tuple[tuple[int, str] | None, Caller | None]:
    """Why the request is refused (status and detail), or None, and the key's caller."""
    key = presented_key(Headers(scope=scope))
    if not key:
        return (401, NO_KEY), None
    try:
        caller = await run_in_threadpool(service.authenticate, key)
    except ServiceError as exc:  # keys cannot be checked now (the database is away)
        return (exc.status_code, str(exc.detail)), None
    return (None, caller) if caller else ((401, BAD_KEY), None)


def _counting(send: Send, refusals: RefusalThrottle, sender: str) -> Send:
    """``send``, counting the route's refusals of the body against the sender."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] in COUNTED_AFTER_ANSWER:
            refusals.refused(sender)
        await send(message)

    return wrapped


async def _refuse(
    scope: Scope, send: Send, status: int, detail: str, retry_after: int | None = None
) -> None:
    request_id = scope.get("state", {}).get("request_id")
    headers = [(b"www-authenticate", b"Bearer")] if status == 401 else []
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await refuse_unread(send, status, detail, request_id, headers)
