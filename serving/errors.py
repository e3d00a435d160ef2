"""Error responses: every failure names where and why, with the request id; never a 500."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serving.logs import logger


class ServiceError(Exception):
    """An error with the HTTP status it answers."""

    def __init__(
        self,
        status_code: int,
        detail: str | list[dict[str, Any]],
        problem_count: int | None = None,
    ) -> None:
        super().__init__(str(detail))
        self.status_code = status_code
        self.detail = detail
        self.problem_count = problem_count  # when ``detail`` lists only the first problems


MAX_PROBLEMS_SHOWN = 100  # a batch of broken denials must not answer a 422 larger than itself


def response(
    request: Request,
    status_code: int,
    detail: Any,
    headers: Mapping[str, str] | None = None,
    problem_count: int | None = None,
) -> JSONResponse:
    """The error answer: the detail (a list of problems capped, with their full count) and the
    request id; ``headers`` such as a 405's ``Allow`` are kept."""
    request_id = getattr(request.state, "request_id", None)
    headers = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if status_code == 401 else {})}
    content: dict[str, Any] = {"detail": detail, "request_id": request_id}
    if isinstance(detail, list):
        count = problem_count if problem_count is not None else len(detail)
        content |= {"detail": detail[:MAX_PROBLEMS_SHOWN], "problem_count": count}
    return JSONResponse(content, status_code=status_code, headers=headers)


def problems(errors: Iterable[Mapping[str, Any]], *within: str | int) -> list[dict[str, Any]]:
    """Pydantic errors as field paths and reasons, without echoing the submitted values;
    ``within`` is prefixed to each path (``"body"`` for a body validated by hand)."""
    return [
        {
            "loc": [*within, *(part if isinstance(part, int) else str(part) for part in e["loc"])],
            "msg": e["msg"],
        }
        for e in errors
    ]


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The framework's validation errors as :func:`problems`."""
    return problems(exc.errors())


def install(app: FastAPI) -> None:
    """A last handler: an unexpected failure is logged with its trace and answered 503, so a
    client may retry, and no request ever gets a bare 500."""

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        route = getattr(request.scope.get("route"), "path", "unmatched")  # paths carry ids
        logger.exception("unexpected failure", extra={"route": route})
        return response(request, 503, "the service could not answer this request; retry later")
