"""Error responses: every failure names where and why, with the request id; never a 500."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serving.logs import logger


class ServiceError(Exception):
    """An error with the HTTP status it answers."""

    def __init__(self, status_code: int, detail: str | list[dict[str, Any]]) -> None:
        super().__init__(str(detail))
        self.status_code = status_code
        self.detail = detail


def response(request: Request, status_code: int, detail: Any) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
    return JSONResponse(
        {"detail": detail, "request_id": request_id}, status_code=status_code, headers=headers
    )


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as field paths and reasons, without echoing the submitted values."""
    return [
        {
            "loc": [str(part) if not isinstance(part, int) else part for part in error["loc"]],
            "msg": error["msg"],
        }
        for error in exc.errors()
    ]


def install(app: FastAPI) -> None:
    """A last handler: an unexpected failure is logged with its trace and answered 503, so a
    client may retry, and no request ever gets a bare 500."""

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected failure", extra={"path": request.url.path})
        return response(request, 503, "the service could not answer this request; retry later")
