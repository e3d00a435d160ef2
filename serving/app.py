"""The triage service: FastAPI app, versioned under ``/v1``.

Worklist systems score denials (``POST /v1/score``) or upload remittances
(``POST /v1/ingest/835``); reviewers read the latest score of a denial with its explanation
(``GET /v1/denials/{denial_id}``) and send outcomes and corrections (``POST /v1/feedback``).
Every score is recorded in the audit log with the model and mapping versions and a hash of its
input. Scoring runs in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import PurePath
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from denial_triage.settings import Settings, get_settings
from serving import errors, live, metrics, page_cache, pages, payer_watch, worklist_api
from serving.auth import ROLES, Caller, KeyGate, require_roles
from serving.errors import ServiceError
from serving.limits import read_score_body
from serving.logs import configure_logging, logger
from serving.middleware import RequestContextMiddleware
from serving.records import REVIEWER_ROLES
from serving.refusals import RefusalThrottle
from serving.schemas import (
    NO_NUL,
    ErrorResponse,
    FeedbackIn,
    FeedbackOut,
    OwnerQueue,
    PlanOut,
    QueryDate,
    ScoreRequest,
    ScoreResponse,
    StoredScore,
)
from serving.scoring import ScoredBatch
from serving.state import ServiceState

MAX_UPLOAD_NAME = 100
SCORERS = ("scorer", "admin")
ADMINS = ("admin",)
ERRORS = {
    # The framework's own answer to a body it cannot read (not UTF-8, a broken multipart form).
    400: {"model": ErrorResponse, "description": "The body cannot be parsed."},
    401: {"model": ErrorResponse, "description": "No valid API key."},
    403: {"model": ErrorResponse, "description": "The key's role may not do this."},
    413: {"model": ErrorResponse, "description": "Body or batch larger than the service accepts."},
    422: {"model": ErrorResponse, "description": "Where the request breaks the contract, and why."},
    429: {
        "model": ErrorResponse,
        "description": "This sender was refused too often in the last minute; see Retry-After.",
    },
    503: {"model": ErrorResponse, "description": "No model is loaded yet."},
}


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]
ScorerKey = Annotated[Caller, Depends(require_roles(*SCORERS))]
ReviewerKey = Annotated[Caller, Depends(require_roles(*REVIEWER_ROLES))]
AnyKey = Annotated[Caller, Depends(require_roles(*ROLES))]
AdminKey = Annotated[Caller, Depends(require_roles(*ADMINS))]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service, configured from settings (the environment by default)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        state = ServiceState(settings)
        app.state.service = state
        kept_alerts = partial(page_cache.open_payer_alerts, state.page_cache)
        app.state.payer_gauges = payer_watch.GaugeRefresh(alerts=kept_alerts)
        await run_in_threadpool(state.start)
        poller = asyncio.create_task(_poll_champion(state, settings.model_poll_seconds))
        try:
            yield
        finally:
            poller.cancel()
            await run_in_threadpool(state.stop)

    app = FastAPI(
        title="denial-triage",
        version="1",
        description="Scores medical billing denials: root cause, recovery, preventability, "
        "priority and routing, with SHAP reasons; every score is audited.",
        lifespan=lifespan,
        # The schema maps every route and field a caller may send: it is served to key holders
        # only (GET /v1/openapi.json). No Swagger page: it loads its scripts from a CDN, which
        # the pages' Content-Security-Policy and offline hospital networks both refuse.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        KeyGate,
        refusals=RefusalThrottle(settings.refusals_per_minute, settings.refused_pause_seconds),
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    errors.install(app)
    _routes(app)
    app.openapi = _openapi(app, settings.max_batch_denials)  # type: ignore[method-assign]
    # Reviewers' and leaders' pages under /ui, signed in through a session cookie.
    app.add_middleware(SessionMiddleware, **pages.session_options(settings))
    app.mount("/ui/static", pages.static_files(), name="ui-static")
    app.include_router(pages.router)
    app.include_router(worklist_api.router)
    app.add_exception_handler(pages.SignInRequired, pages.redirect_to_sign_in)
    return app


async def _poll_champion(state: ServiceState, seconds: float) -> None:
    """Hot reload: follow the champion alias (a failed check keeps the current model) and
    the challenger's, whose model scores in shadow.

    The audit spool is drained here too, first at start: what a previous run left while the
    database was away is written as soon as it is back, not one poll interval later.
    """
    while True:
        await _survive(state.drain_spool)
        await asyncio.sleep(seconds)
        await _survive(state.refresh_model)
        await _survive(state.refresh_challenger)


async def _survive(step: Callable[[], object]) -> None:
    """Run one step of the poll loop; an unexpected failure is logged, and the loop goes on
    (an ended loop would stop both hot reload and the spool's drain, silently)."""
    try:
        await run_in_threadpool(step)
    except Exception:
        logger.exception(
            "poll step failed; retried at the next poll", extra={"step": step.__name__}
        )


def _answer(scored: ScoredBatch) -> Response:
    """The scores as JSON, encoded once. Returning a Response skips FastAPI's validation of
    the declared ``ScoreResponse``, which the results already have the shape of (tested)."""
    return Response(scored.json(), media_type="application/json")


def upload_name(filename: str | None) -> str:
    """A plain file name for an uploaded remittance, whatever the client called it: only
    letters, digits, dots, dashes and underscores, never a path, ``..`` or a NUL, and short."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePath(filename or "").name).lstrip(".")
    return name[:MAX_UPLOAD_NAME] or "upload.835"


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its JSON body itself (to check limits
    before validating), documented as the model it is validated into."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def _openapi(app: FastAPI, max_batch_denials: int) -> Callable[[], dict[str, Any]]:
    """The schema with the models of hand-read bodies in its components, and the batch
    limit of this service on the denial list."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            request = ScoreRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(request.pop("$defs", {}))
            request["properties"]["denials"]["maxItems"] = max_batch_denials
            components["ScoreRequest"] = request
            app.openapi_schema = document
        return app.openapi_schema

    return schema


def _routes(app: FastAPI) -> None:
    @app.post(
        "/v1/score",
        response_model=ScoreResponse,
        responses=ERRORS,
        tags=["scoring"],
        openapi_extra=_json_body(ScoreRequest),
    )
    async def score(caller: ScorerKey, state: State, request: Request) -> Response:
        """Score 1 to N denials: probabilities, priority with its parts, routing, review flags
        and SHAP reasons per model."""
        # Read here, after the key was checked, counted as it arrives, and parsed within
        # limits in a worker thread.
        body = await read_score_body(request.stream(), state.settings.max_batch_denials)
        scored = await run_in_threadpool(state.score_body, body, caller, request.state.request_id)
        return _answer(scored)

    @app.post("/v1/ingest/835", response_model=ScoreResponse, responses=ERRORS, tags=["scoring"])
    async def ingest_835(
        caller: ScorerKey, state: State, request: Request, file: Annotated[UploadFile, File()]
    ) -> Response:
        """Ingest an uploaded 835 remittance, then score and return its denials."""
        content = await file.read()
        scored = await run_in_threadpool(
            state.score_remittance,
            content,
            upload_name(file.filename),
            caller,
            request.state.request_id,
        )
        return _answer(scored)

    @app.get(
        # A path parameter, so ids holding a '/' (sent as %2F) are read back as scored.
        "/v1/denials/{denial_id:path}",
        response_model=StoredScore,
        responses={**ERRORS, 404: {"model": ErrorResponse, "description": "Never scored."}},
        tags=["review"],
    )
    async def latest_score(
        denial_id: Annotated[str, Path(pattern=NO_NUL)], caller: ReviewerKey, state: State
    ) -> StoredScore:
        """The latest score of a denial with its full explanation, from the audit log; days
        to deadline, urgency and priority counted on today's date (``counted_from``)."""
        return await run_in_threadpool(state.latest_score, denial_id, live.today())

    @app.get("/v1/worklist/plan", response_model=PlanOut, responses=ERRORS, tags=["review"])
    async def worklist_plan(
        caller: ReviewerKey,
        state: State,
        hours: Annotated[
            float, Query(gt=0, le=24 * 31, description="Hours each planned queue has today.")
        ],
        queue: Annotated[
            list[OwnerQueue],
            Query(max_length=50, description="Owner queues to plan; none: every one."),
        ] = [],  # noqa: B006 (FastAPI copies query defaults)
        date: Annotated[
            QueryDate | None, Query(description="Plan as of this day instead of today.")
        ] = None,
    ) -> PlanOut:
        """Today's plan per owner queue: the open, workable denials in priority order (counted
        on today's date, or ``date``) while their effort hours fit the queue's hours."""
        day = date or live.today()
        return await run_in_threadpool(state.plan, hours, queue, day)

    @app.post(
        "/v1/feedback",
        response_model=FeedbackOut,
        responses={
            **ERRORS,
            200: {"description": "This idempotency key was already recorded, with this body."},
            201: {"model": FeedbackOut, "description": "Recorded."},
            404: {"model": ErrorResponse, "description": "The denial was never scored."},
            409: {
                "model": ErrorResponse,
                "description": "This idempotency key was already used for different feedback.",
            },
        },
        tags=["review"],
    )
    async def feedback(body: FeedbackIn, caller: ReviewerKey, state: State) -> JSONResponse:
        """Record an outcome or correction; repeating the same idempotency key is harmless."""
        stored = await run_in_threadpool(state.save_feedback, body, caller)
        return JSONResponse(
            stored.model_dump(mode="json"), status_code=201 if stored.created else 200
        )

    @app.post("/v1/admin/reload", tags=["admin"], responses=ERRORS)
    async def reload(caller: AdminKey, state: State) -> dict[str, object]:
        """Load the champion now instead of waiting for the next poll."""
        return await run_in_threadpool(state.refresh_model)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"], responses=ERRORS)
    async def prometheus(caller: AdminKey, state: State, request: Request) -> PlainTextResponse:
        """Prometheus metrics."""
        await run_in_threadpool(request.app.state.payer_gauges.refresh, state.session)
        body, content_type = metrics.exposition()
        return PlainTextResponse(body, media_type=content_type)

    @app.get("/v1/openapi.json", tags=["operations"], responses=ERRORS)
    async def openapi_schema(caller: AnyKey, request: Request) -> dict[str, Any]:
        """The OpenAPI schema of this service, for generating clients; any valid key."""
        return request.app.openapi()

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={
            503: {
                "description": "Not ready: the same fields, saying why.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )
    async def readyz(state: State) -> JSONResponse:
        """Ready only with a model loaded; says which one and from where."""
        status = state.readiness()
        return JSONResponse(status, status_code=200 if status["ready"] else 503)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return errors.response(
            request, exc.status_code, exc.detail, problem_count=exc.problem_count
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return errors.response(request, exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return errors.response(request, 422, errors.validation_details(exc))

    logger.debug("routes installed")
