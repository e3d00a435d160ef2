"""Server-rendered pages for reviewers and leaders, under ``/ui``.

Sign-in takes an API key of the reviewer or admin role and opens a session kept in the database
(:class:`serving.records.PageSession`); the signed cookie (HttpOnly, SameSite=Lax, path ``/ui``)
holds only the session's random id, nothing derived from the key. Every page looks the session
up again, so signing out, the session's 8 hours passing, or the key being revoked closes it at
its next request. The sign-in form echoes a token from the cookie it was served with, so
another site cannot sign a browser in under its own key (login CSRF). Pages are Jinja2 templates
with autoescaping; charts are inline SVG drawn on the server; there is no JavaScript. Forms that
change something carry the session's CSRF token, and the feedback form a generated idempotency
key, so a double submit stores one feedback.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from denial_triage.settings import Settings
from features.codes import CodeReference
from features.labels import deadline_rule_label, in_plain_words, plain_label
from serving import (
    live,
    model_card,
    monitoring,
    page_cache,
    payer_watch,
    repository,
    views,
    worklist_records,
)
from serving.auth import Caller
from serving.errors import ServiceError
from serving.records import REVIEWER_ROLES, ApiKey
from serving.schemas import FeedbackIn
from serving.site_secrets import site_secret
from serving.state import ServiceState
from training.tracking import CHAMPION

PAGE_ROLES = REVIEWER_ROLES
SESSION_COOKIE = "denial_triage_session"
SESSION_HOURS = 8  # a working day; then sign in again
# What the cookie holds: the page session's id once signed in, the sign-in form's token before.
SESSION_ID = "session"
SIGN_IN_TOKEN = "sign_in_csrf"  # pragma: allowlist secret
SESSION_SECRET_FILE = "session-secret"  # pragma: allowlist secret
HOME = "/ui/worklist"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
# Inline styles are allowed for matplotlib's SVG; scripts are not needed anywhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self'; script-src 'none'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages carry denial data; shared machines must not keep it
}

router = APIRouter(prefix="/ui", include_in_schema=False)


# ---------------------------------------------------------------------------- app wiring


def session_secret(settings: Settings) -> str:
    """The secret signing session cookies: the setting, else one kept in the data directory,
    so every replica sharing the data directory accepts every other's cookies."""
    path = settings.data_dir / SESSION_SECRET_FILE
    return site_secret(settings.session_secret, path, "DENIAL_TRIAGE_SESSION_SECRET")


def session_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of Starlette's ``SessionMiddleware`` for the pages' cookie."""
    return {
        "secret_key": session_secret(settings),
        "session_cookie": SESSION_COOKIE,
        "max_age": SESSION_HOURS * 3600,
        "path": "/ui",  # the API never receives the cookie; it takes keys only
        "same_site": "lax",
    }


def static_files() -> StaticFiles:
    """The pages' stylesheet, served from the package."""
    return StaticFiles(directory=STATIC_DIR)


class SignInRequired(Exception):
    """A page was asked for without a valid session; answered by a redirect to sign-in."""

    def __init__(self, wanted: str) -> None:
        super().__init__(wanted)
        self.wanted = wanted


async def redirect_to_sign_in(request: Request, exc: Exception) -> Response:
    """The app's handler of :class:`SignInRequired`."""
    wanted = exc.wanted if isinstance(exc, SignInRequired) else HOME
    query = urlencode({"next": wanted}) if wanted != HOME else ""
    return RedirectResponse("/ui/login" + (f"?{query}" if query else ""), status_code=303)


# ---------------------------------------------------------------------------- templates


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every value is escaped unless it is a Markup chart
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        dollars=lambda value: "—" if value is None else f"${value:,.2f}",
        whole_dollars=lambda value: "—" if value is None else f"${value:,.0f}",
        percent=lambda value: "—" if value is None else f"{value:.0%}",
        signed=lambda value: f"{value:+.2f}",
        count=lambda value: f"{int(value or 0):,}",
        words=lambda value: "—" if value is None else str(value).replace("_", " "),
        # Identifiers by their plain label (features/reference/labels.yaml): ``label("kind")``.
        label=lambda value, kind: plain_label(kind, value),
        deadline_rule=deadline_rule_label,
        plain=lambda value: "—" if value is None else in_plain_words(str(value)),
        points=lambda value: f"{value:+.1f} points",
    )
    return environment


TEMPLATES = Jinja2Templates(env=_environment())


def _render(
    request: Request,
    template: str,
    context: dict[str, Any],
    viewer: Viewer | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(
        request, template, {"viewer": viewer, **context}, status_code=status_code
    )
    response.headers.update(SECURITY_HEADERS)
    return response


# ---------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class Viewer:
    """Who is signed in: the key's name and role, and the session's CSRF token."""

    name: str
    role: str
    csrf_token: str

    @property
    def caller(self) -> Caller:
        return Caller(self.name, self.role)


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def _key_records(request: Request) -> Session:
    """A database session for keys and page sessions. Not ``ServiceState.session()``: these
    read no scores, so they need not wait for the audit writer."""
    sessions = _state(request).sessions
    assert sessions is not None, "the service has not started"
    return sessions()


def signed_in(request: Request) -> Viewer:
    """The viewer of an open page session, checked against the database on every request."""
    session_id = request.session.get(SESSION_ID)
    if isinstance(session_id, str):
        with _key_records(request) as session:
            key = repository.signed_in_key(session, session_id)
        if key is not None and key.role in PAGE_ROLES:
            return Viewer(key.name, key.role, key.csrf_token)
    request.session.clear()
    if request.method != "GET":  # a form sent from an expired session: back to its page
        raise SignInRequired(request.url.path.removesuffix("/feedback"))
    query = f"?{request.url.query}" if request.url.query else ""
    raise SignInRequired(request.url.path + query)


SignedIn = Annotated[Viewer, Depends(signed_in)]


def _check_csrf(viewer: Viewer, token: str) -> None:
    if not _same_token(viewer.csrf_token, token):
        raise ServiceError(403, "this form is stale or was not sent from these pages; reload it")


def _same_token(expected: object, sent: str) -> bool:
    return isinstance(expected, str) and bool(expected) and secrets.compare_digest(expected, sent)


def safe_next(wanted: str | None) -> str:
    """Where to go after sign-in: a page of this site only, never another host."""
    if wanted and re.fullmatch(r"/ui/[^\s\\]*", wanted) and not wanted.startswith("/ui/log"):
        return wanted
    return HOME


# ---------------------------------------------------------------------------- forms


class FeedbackForm(BaseModel):
    """The review page's feedback form as posted; :meth:`feedback` makes the API's body."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    csrf: str = ""
    idempotency_key: str = Field("", max_length=200)
    verdict: Literal["confirm", "correct", "none"] = "none"
    corrected_root_cause: str = ""
    resolution: str = ""
    recovered_amount: str = ""
    resolved_date: str = ""
    reviewer_note: str = Field("", max_length=2000)

    def feedback(self, denial_id: str) -> FeedbackIn:
        """The feedback this form records, validated as ``POST /v1/feedback`` validates it."""
        correcting = self.verdict == "correct"
        if correcting and not self.corrected_root_cause:
            raise ValueError("choose the root cause it should be, or confirm the predicted one")
        if self.verdict == "none" and not (self.resolution or self.reviewer_note):
            raise ValueError("nothing to record: give a verdict, an outcome or a note")
        return FeedbackIn(
            idempotency_key=self.idempotency_key,
            denial_id=denial_id,
            confirmed_root_cause={"confirm": True, "correct": False}.get(self.verdict),
            corrected_root_cause=self.corrected_root_cause if correcting else None,
            resolution=self.resolution or None,
            recovered_amount=_form_amount(self.recovered_amount),
            resolved_date=self.resolved_date or None,
            reviewer_note=self.reviewer_note or None,
        )


def _form_amount(text: str) -> float | None:
    """The form's dollars as a number: the API takes a JSON number, never text."""
    if not text:
        return None
    try:
        amount = float(text.replace(",", "").removeprefix("$"))
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount):
        raise ValueError(f"recovered_amount: {text!r} is not an amount in dollars, like 120.50")
    return amount


# ---------------------------------------------------------------------------- sign-in


@router.get("", response_class=RedirectResponse)
@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


@router.get("/login", response_class=HTMLResponse)
def sign_in_page(
    request: Request, wanted: Annotated[str, Query(alias="next", max_length=2000)] = ""
) -> HTMLResponse:
    """The sign-in form."""
    return _sign_in_form(request, wanted)


def _sign_in_form(
    request: Request, wanted: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    """The sign-in form with the token its post must echo, kept in the cookie until used."""
    if not isinstance(request.session.get(SIGN_IN_TOKEN), str):
        request.session[SIGN_IN_TOKEN] = secrets.token_urlsafe(32)
    context = {"next": safe_next(wanted), "error": error, "csrf": request.session[SIGN_IN_TOKEN]}
    return _render(request, "login.html", context, status_code=status_code)


@router.post("/login", response_class=HTMLResponse)
def sign_in(
    request: Request,
    api_key: Annotated[str, Form(max_length=repository.MAX_KEY_LENGTH * 2)] = "",
    wanted: Annotated[str, Form(alias="next", max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Open a session for a reviewer or admin key; refuse scorer keys, bad keys and forms not
    served by this site."""
    if not _same_token(request.session.get(SIGN_IN_TOKEN), csrf):
        error = "This sign-in form is stale or was not sent from these pages; sign in here."
        return _sign_in_form(request, wanted, error, status_code=403)
    with _key_records(request) as session:
        key = repository.authenticate(session, api_key.strip())
        error, status = _sign_in_refusal(key)
        if key is None or error:
            return _sign_in_form(request, wanted, error, status_code=status)
        session_id = repository.open_page_session(session, key, dt.timedelta(hours=SESSION_HOURS))
    request.session.clear()  # a new cookie: the sign-in token is spent
    request.session[SESSION_ID] = session_id
    return RedirectResponse(safe_next(wanted), status_code=303)


def _sign_in_refusal(key: ApiKey | None) -> tuple[str | None, int]:
    """Why a key may not open the pages, and the status that says so; (None, 200) if it may."""
    if key is None:
        return "That key is not valid, or it was revoked.", 401
    if key.role not in PAGE_ROLES:
        return f"A {key.role} key cannot open these pages; use a reviewer or admin key.", 403
    return None, 200


@router.post("/logout")
def sign_out(request: Request, viewer: SignedIn, csrf: Annotated[str, Form()] = "") -> Response:
    """End the session, here and in the database, so its cookie opens nothing any more."""
    _check_csrf(viewer, csrf)
    with _key_records(request) as session:
        repository.end_page_session(session, request.session[SESSION_ID])
    request.session.clear()
    return RedirectResponse("/ui/login", status_code=303)


# ---------------------------------------------------------------------------- worklist


@router.get("/worklist", response_class=HTMLResponse)
def worklist(request: Request, viewer: SignedIn) -> HTMLResponse:
    """Denials ranked by priority, filtered and paged."""
    query = views.worklist_query(request.query_params)
    with _state(request).session() as session:
        context = views.worklist(session, query, live.today())
    context |= {"active": "worklist", "notice": _change_notice(request.query_params)}
    return _render(request, "worklist.html", context, viewer)


@router.get("/worklist.csv")
def worklist_export(request: Request, viewer: SignedIn) -> StreamingResponse:
    """The filtered worklist as CSV, in the page's order, every matching denial (no patient
    names, member ids or claim ids: the records hold none)."""
    query = views.worklist_query(request.query_params)
    as_of = live.today()
    sessions = _state(request).sessions
    assert sessions is not None, "the service has not started"
    session = sessions()  # closed by the response's last line, not when this returns

    def lines() -> Iterator[str]:
        with session:
            yield from views.export_lines(session, query, as_of)

    filename = f"worklist-{as_of.isoformat()}.csv"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


class WorklistChangeForm(BaseModel):
    """The worklist's bulk form: the ticked denials and what to do with them."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    csrf: str = ""
    next: str = Field("", max_length=4000)
    action: Literal["assign", "unassign", "in_progress", "open"]
    assignee: str = Field("", max_length=100)
    denial_id: list[str] = Field(default_factory=list, max_length=views.PAGE_SIZES[-1])


@router.post("/worklist/changes", response_class=HTMLResponse)
def change_worklist(
    request: Request, viewer: SignedIn, form: Annotated[WorklistChangeForm, Form()]
) -> Response:
    """Assign, unassign, or mark in progress or open the ticked denials; audited under the
    signed-in key."""
    _check_csrf(viewer, form.csrf)
    back = form.next if form.next.startswith("/ui/worklist") else HOME
    try:
        with _state(request).session() as session:
            changed = _apply_change(session, form, viewer.name)
    except worklist_records.WorklistProblem as exc:
        return _worklist_page(request, viewer, back, problems=[str(exc)], status_code=422)
    separator = "&" if "?" in back else "?"
    done = urlencode({"done": form.action, "changed": len(changed)})
    return RedirectResponse(f"{back}{separator}{done}", status_code=303)


def _change_notice(params: Mapping[str, str]) -> str | None:
    """What the last bulk change did, read back from the address it redirected to."""
    action, changed = params.get("done", ""), params.get("changed", "")
    if action not in _DONE or not changed.isdigit():
        return None
    return f"{int(changed):,} denial{'s' if changed != '1' else ''} {_DONE[action]}."


_DONE = {
    "assign": "assigned",
    "unassign": "unassigned",
    "in_progress": "marked in progress",
    "open": "marked open",
}


def _apply_change(session: Session, form: WorklistChangeForm, actor: str) -> list[str]:
    if form.action == "unassign":
        return worklist_records.assign(session, form.denial_id, None, actor)
    if form.action == "assign":
        if not form.assignee:
            raise worklist_records.WorklistProblem("choose the reviewer to assign them to")
        return worklist_records.assign(session, form.denial_id, form.assignee, actor)
    return worklist_records.set_status(session, form.denial_id, form.action, actor)


def _worklist_page(
    request: Request,
    viewer: Viewer,
    address: str,
    *,
    problems: list[str],
    status_code: int,
) -> HTMLResponse:
    """The worklist at ``address`` (its query string), with why the last change was refused."""
    query = views.worklist_query(dict(parse_qsl(urlsplit(address).query)))
    with _state(request).session() as session:
        context = views.worklist(session, query, live.today())
    context |= {"active": "worklist", "notice": None, "change_problems": problems}
    return _render(request, "worklist.html", context, viewer, status_code=status_code)


@router.get("/to-label", response_class=HTMLResponse)
def to_label(request: Request, viewer: SignedIn) -> HTMLResponse:
    """Scored denials no reviewer has labelled, those whose labels teach the models most first."""
    size, problems = views.to_label_size(request.query_params)
    with _state(request).session() as session:
        context = views.to_label(session, size)
    context |= {"problems": problems, "active": "to-label"}
    return _render(request, "to_label.html", context, viewer)


# ---------------------------------------------------------------------------- denial review


# Path parameters, so ids holding a '/' are reviewed like any other.
@router.get("/denials/{denial_id:path}", response_class=HTMLResponse)
def denial(request: Request, denial_id: str, viewer: SignedIn, recorded: str = "") -> Response:
    """A denial's latest score, its explanation and the feedback form."""
    notice = {
        "new": "Feedback recorded.",
        "repeat": "This feedback was already recorded; it was not stored twice.",
    }.get(recorded)
    return _review(request, viewer, denial_id, notice=notice)


def _review(
    request: Request,
    viewer: Viewer,
    denial_id: str,
    *,
    notice: str | None = None,
    problems: list[tuple[str, str]] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    state, as_of = _state(request), live.today()  # one date for the whole page
    with state.session() as session:
        record = repository.latest_score(session, denial_id)
        feedback = repository.feedback_for_denial(session, denial_id) if record else []
        standing = worklist_records.worklist_entry(session, denial_id, as_of)
    if record is None:
        context = {"denial_id": denial_id, "active": "worklist"}
        return _render(request, "not_scored.html", context, viewer, status_code=404)
    reference = CodeReference(state.settings.codes_dir)
    context = views.denial_review(record, feedback, reference, as_of)
    form = form or {"idempotency_key": f"ui-{uuid.uuid4().hex}"}
    problems = problems or []
    context |= {
        "notice": notice,
        # Listed above the form, and each again beside its own field.
        "problems": [f"{field}: {message}" for field, message in problems],
        "field_problems": by_field(problems),
        "form": form,
        "active": "worklist",
        "today": as_of,
        "standing": standing,
    }
    return _render(request, "denial.html", context, viewer, status_code=status_code)


@router.post("/denials/{denial_id:path}/feedback", response_class=HTMLResponse)
def record_feedback(
    request: Request,
    denial_id: str,
    viewer: SignedIn,
    form: Annotated[FeedbackForm, Form()],
) -> Response:
    """Store a confirmation or correction and an outcome through the feedback path."""
    _check_csrf(viewer, form.csrf)
    try:
        body = form.feedback(denial_id)
        stored = _state(request).save_feedback(body, viewer.caller)
    except (ValueError, ValidationError, ServiceError) as exc:
        return _review(
            request,
            viewer,
            denial_id,
            problems=_problems(exc),
            form=form.model_dump(exclude={"csrf"}),
            status_code=_status(exc),
        )
    recorded = "new" if stored.created else "repeat"
    return RedirectResponse(
        f"/ui/denials/{quote(denial_id)}?recorded={recorded}#feedback", status_code=303
    )


FORM_FIELDS = (
    "corrected_root_cause",
    "resolution",
    "recovered_amount",
    "resolved_date",
    "reviewer_note",
)


def _problems(exc: Exception) -> list[tuple[str, str]]:
    """The refusal as (field, message) pairs; the field is "form" when none is named."""
    if isinstance(exc, ValidationError):
        return [_problem(e["loc"], e["msg"]) for e in exc.errors()]
    if isinstance(exc, ServiceError) and isinstance(exc.detail, list):
        return [_problem(d["loc"], d["msg"]) for d in exc.detail]
    if isinstance(exc, ServiceError):
        return [("form", str(exc.detail))]
    field, _, message = str(exc).partition(": ")
    return [(field, message)] if field in FORM_FIELDS and message else [("form", str(exc))]


def _problem(loc: Sequence[str | int], message: str) -> tuple[str, str]:
    """A problem as the form shows it: the field's name (the API's ``body`` left out)."""
    field = ".".join(str(part) for part in loc if part != "body")
    return field or "form", message


def by_field(problems: list[tuple[str, str]]) -> dict[str, str]:
    """Each form field's problems, to show beside the field itself."""
    shown: dict[str, list[str]] = {}
    for field, message in problems:
        if field in FORM_FIELDS:
            shown.setdefault(field, []).append(message)
    return {field: "; ".join(messages) for field, messages in shown.items()}


def _status(exc: Exception) -> int:
    return exc.status_code if isinstance(exc, ServiceError) else 422


# ---------------------------------------------------------------------------- dashboard and model


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, viewer: SignedIn) -> HTMLResponse:
    """Where denials come from and where revenue leaks, from the audit log and feedback."""
    with _state(request).session() as session:
        context = views.dashboard(session, live.today())
    return _render(request, "dashboard.html", {**context, "active": "dashboard"}, viewer)


@router.get("/payers", response_class=HTMLResponse)
def payers(request: Request, viewer: SignedIn) -> HTMLResponse:
    """Payer behaviour alerts raised in the last 30 days of the scored denials' dates."""
    state = _state(request)
    with state.session() as session:
        alerts = page_cache.open_payer_alerts(state.page_cache, session)
    payer_watch.set_gauges(alerts)
    context = {"alerts": alerts, "open_days": payer_watch.OPEN_ALERT_DAYS, "active": "payers"}
    return _render(request, "payers.html", context, viewer)


@router.get("/model", response_class=HTMLResponse)
def model(request: Request, viewer: SignedIn) -> HTMLResponse:
    """The champion and the challenger: versions, data, metrics beside baselines, figures,
    and the two compared on the same live denials (the challenger's shadow scores)."""
    problem = None
    try:
        cards = model_card.registry_cards()
    except Exception as exc:  # the registry being away must not take the page down
        cards, problem = {}, f"the model registry cannot be read: {exc}"
    state = _state(request)
    shadow = state.shadow
    try:
        with state.session() as session:
            version = shadow.version if shadow is not None else None
            comparison = page_cache.live_comparison(state.page_cache, session, version)
    except SQLAlchemyError:  # the registry's half of the page is still worth showing
        comparison = None
        problem = problem or "the shadow scores cannot be read: database unreachable"
    context = {
        "cards": cards,
        "problem": problem,
        "live": comparison,
        "shadow_share": shadow.share if shadow is not None else None,
        "serving": _state(request).readiness(),
        "figures": model_card.FIGURES,
        "capacity_label": model_card.capacity_label,
        "active": "model",
    }
    return _render(request, "model.html", context, viewer)


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring_page(request: Request, viewer: SignedIn) -> HTMLResponse:
    """The champion on the outcomes recorded since: calibration, ROC AUC, root-cause accuracy,
    top-decile dollars per month and payer type beside training's, drift, and whether to
    retrain."""
    since, problems = views.monitoring_since(request.query_params)
    champion, problem = _served_champion(_state(request))
    with _state(request).session() as session:
        context = views.monitoring(session, champion, _state(request).settings, since)
    context.update(problems=problems, problem=problem, since=since, active="monitoring")
    return _render(request, "monitoring.html", context, viewer)


def _served_champion(state: ServiceState) -> tuple[monitoring.Champion | None, str | None]:
    """The champion's training figures from the registry, and the drift reference of the
    model this service has loaded (the champion unless the registry is away)."""
    try:
        card = model_card.registry_cards()[CHAMPION]
    except Exception as exc:  # the registry being away must not take the page down
        return None, f"the model registry cannot be read: {exc}"
    if card is None:
        return None, "no model is champion: train and promote one first"
    served = state.model
    reference = served.triage.drift_reference if served and served.version == card.version else None
    return monitoring.Champion(card.version, card.run.report, reference), None


@router.get("/model/{version}/figures/{name}")
def model_figure(version: str, name: str, viewer: SignedIn) -> Response:
    """A figure of a registered version's training run (PNG)."""
    if not version.isdigit() or name not in model_card.FIGURES:
        raise ServiceError(404, "no such figure")
    try:
        content = model_card.version_figure(version, name)
    except Exception as exc:  # a missing version or artifact, or the registry being away
        raise ServiceError(404, f"figure {name} of version {version} is not available") from exc
    return Response(content, media_type="image/png", headers={"Cache-Control": "private"})
