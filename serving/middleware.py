"""Request ids, body size limits, timing and access logs for every request."""

from __future__ import annotations

import json
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import metrics
from serving.logs import REQUEST_ID, logger

REQUEST_ID_HEADER = b"x-request-id"
CLIENT_REQUEST_ID_HEADER = b"x-client-request-id"
# Forms and feedback are a few kilobytes: their routes take far less than a batch of denials.
SMALL_BODY_BYTES = 64 * 1024
SMALL_BODY_PATHS = ("/ui/", "/v1/feedback", "/v1/admin/")


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an HTTP error so the framework answers 413 even
    when it meets it while parsing the body."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class RequestContextMiddleware:
    """Pure ASGI middleware: streaming bodies are counted as they arrive, so a body over the
    limit is refused with 413 without being read into memory.

    Request ids are the service's own: the audit log must be able to trust them. A client's
    ``X-Request-ID`` is logged beside it and returned as ``X-Client-Request-ID``.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        limit = body_limit(scope["path"], self.max_body_bytes)
        client_id = _client_id(scope)
        started = time.perf_counter()
        status = {"code": 500}
        try:
            if _declared_length(scope) > limit:
                status["code"] = 413
                await _refuse_too_large(send, request_id, limit)
                return
            tagged = _tagged(send, request_id, client_id, status)
            await self.app(scope, _limited(receive, limit), tagged)
        except BodyTooLarge:
            status["code"] = 413
            await _refuse_too_large(send, request_id, limit)
        finally:
            _observe(scope, status["code"], time.perf_counter() - started, client_id)
            REQUEST_ID.reset(token)


def body_limit(path: str, max_body_bytes: int) -> int:
    """The largest body a path takes: forms and feedback far less than a batch of denials."""
    if path.startswith(SMALL_BODY_PATHS):
        return min(SMALL_BODY_BYTES, max_body_bytes)
    return max_body_bytes


def _client_id(scope: Scope) -> str | None:
    """The client's own request id when it is a plain token, for its logs to meet ours."""
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")[:64]
            return text if text.replace("-", "").isalnum() else None
    return None


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


def _tagged(send: Send, request_id: str, client_id: str | None, status: dict[str, int]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            status["code"] = message["status"]
            headers = message.setdefault("headers", [])
            headers.append((REQUEST_ID_HEADER, request_id.encode()))
            if client_id:
                headers.append((CLIENT_REQUEST_ID_HEADER, client_id.encode()))
        await send(message)

    return wrapped


async def _refuse_too_large(send: Send, request_id: str, limit: int) -> None:
    detail = f"request body larger than {limit} bytes"
    await refuse_unread(send, 413, detail, request_id, [(REQUEST_ID_HEADER, request_id.encode())])


async def refuse_unread(
    send: Send,
    status: int,
    detail: str,
    request_id: str | None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer an error before the body was read, and close the connection: the rest of the
    body is then never received, so a refused upload costs one answer, not its bytes."""
    body = json.dumps({"detail": detail, "request_id": request_id}).encode()
    start = [(b"content-type", b"application/json"), (b"connection", b"close"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def _observe(scope: Scope, status: int, seconds: float, client_id: str | None) -> None:
    # The route's template (``/v1/denials/{denial_id}``), never the path: paths carry ids.
    route = scope.get("route")
    name = getattr(route, "path", None) or "unmatched"
    metrics.REQUESTS.labels(name, str(status)).inc()
    metrics.LATENCY.labels(name).observe(seconds)
    logger.info(
        "request",
        extra={
            "method": scope.get("method"),
            "route": name,
            "status": status,
            "ms": round(seconds * 1000, 2),
            "client_request_id": client_id,
        },
    )
