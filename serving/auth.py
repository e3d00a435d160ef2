"""API keys and roles: ``scorer`` (score, ingest), ``reviewer`` (read scores, send feedback),
``admin`` (everything, keys, reload). Keys are stored hashed; see :mod:`serving.repository`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from serving.errors import ServiceError

ROLES = ("scorer", "reviewer", "admin")
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
            raise ServiceError(401, "an API key is required: send 'Authorization: Bearer <key>'")
        caller = await run_in_threadpool(request.app.state.service.authenticate, key)
        if caller is None:
            raise ServiceError(401, "the API key is not valid or was revoked")
        if caller.role not in roles:
            raise ServiceError(
                403, f"a {caller.role} key may not do this; it needs {' or '.join(roles)}"
            )
        return caller

    return dependency
