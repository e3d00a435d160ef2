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
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from denial_triage.settings import Settings, get_settings
from serving import errors, metrics, pages
from serving.auth import Caller, require_roles
from serving.errors import ServiceError
from serving.logs import configure_logging, logger
from serving.middleware import RequestContextMiddleware
from serving.schemas import (
    ErrorResponse,
    FeedbackIn,
    FeedbackOut,
    ScoreRequest,
    ScoreResponse,
    StoredScore,
)
from serving.state import ServiceState

SCORERS = ("scorer", "admin")
REVIEWERS = ("reviewer", "admin")
ADMINS = ("admin",)
ERRORS = {
    401: {"model": ErrorResponse, "description": "No valid API key."},
    403: {"model": ErrorResponse, "description": "The key's role may not do this."},
    413: {"model": ErrorResponse, "description": "Body or batch larger than the service accepts."},
    422: {"model": ErrorResponse, "description": "Where the request breaks the contract, and why."},
    503: {"model": ErrorResponse, "description": "No model is loaded yet."},
}


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]
ScorerKey = Annotated[Caller, Depends(require_roles(*SCORERS))]
ReviewerKey = Annotated[Caller, Depends(require_roles(*REVIEWERS))]
AdminKey = Annotated[Caller, Depends(require_roles(*ADMINS))]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service, configured from settings (the environment by default)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        state = ServiceState(settings)
        app.state.service = state
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
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    errors.install(app)
    _routes(app)
    # Reviewers' and leaders' pages under /ui, signed in through a session cookie.
    app.add_middleware(SessionMiddleware, **pages.session_options(settings))
    app.mount("/ui/static", pages.static_files(), name="ui-static")
    app.include_router(pages.router)
    app.add_exception_handler(pages.SignInRequired, pages.redirect_to_sign_in)
    return app


async def _poll_champion(state: ServiceState, seconds: float) -> None:
    """Hot reload: follow the champion alias; a failed check keeps the current model."""
    while True:
        await asyncio.sleep(seconds)
        await run_in_threadpool(state.refresh_model)
        await run_in_threadpool(state.drain_spool)


def _routes(app: FastAPI) -> None:
    @app.post("/v1/score", response_model=ScoreResponse, responses=ERRORS, tags=["scoring"])
    async def score(
        body: ScoreRequest, caller: ScorerKey, state: State, request: Request
    ) -> ScoreResponse:
        """Score 1 to N denials: probabilities, priority with its parts, routing, review flags
        and SHAP reasons per model."""
        return await run_in_threadpool(state.score, body, caller, request.state.request_id)

    @app.post("/v1/ingest/835", response_model=ScoreResponse, responses=ERRORS, tags=["scoring"])
    async def ingest_835(
        caller: ScorerKey, state: State, request: Request, file: UploadFile = File(...)
    ) -> ScoreResponse:
        """Ingest an uploaded 835 remittance, then score and return its denials."""
        content = await file.read()
        return await run_in_threadpool(
            state.score_remittance,
            content,
            file.filename or "upload.835",
            caller,
            request.state.request_id,
        )

    @app.get(
        "/v1/denials/{denial_id}", response_model=StoredScore, responses=ERRORS, tags=["review"]
    )
    async def latest_score(denial_id: str, caller: ReviewerKey, state: State) -> StoredScore:
        """The latest score of a denial with its full explanation, from the audit log."""
        return await run_in_threadpool(state.latest_score, denial_id)

    @app.post("/v1/feedback", response_model=FeedbackOut, responses=ERRORS, tags=["review"])
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
    async def prometheus(caller: AdminKey) -> PlainTextResponse:
        """Prometheus metrics."""
        body, content_type = metrics.exposition()
        return PlainTextResponse(body, media_type=content_type)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(state: State) -> JSONResponse:
        """Ready only with a model loaded; says which one and from where."""
        status = state.readiness()
        return JSONResponse(status, status_code=200 if status["ready"] else 503)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return errors.response(request, exc.status_code, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return errors.response(request, exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return errors.response(request, 422, errors.validation_details(exc))

    logger.debug("routes installed")
