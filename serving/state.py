"""What the service holds while it runs: the model in service, the database and the spool.

Plain synchronous methods, called from worker threads by the routes. The model reference is
swapped in one assignment, so a request that started with the old model finishes with it, and
nothing is kept in the process that two replicas sharing one database would disagree on: keys,
scores and feedback live in the database, and an authenticated key is remembered only briefly.

Audit records are written behind the request by :class:`serving.audit_writer.AuditWriter`,
journaled to disk before the answer (:class:`serving.journal.AuditJournal`). Reads never wait
for other clients' batches: a session asked for by a caller waits for that caller's own records
(at most :data:`READ_WAIT_SECONDS`), and a denial whose record is still on its way is read from
its job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pandas as pd
from sqlalchemy.exc import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session

from denial_triage.settings import Settings
from features.contract import clean_records, validate
from serving import live, metrics, repository
from serving.audit_writer import AuditJob, AuditWriter, LocalStore, ProcessStore
from serving.auth import Caller
from serving.database import make_engine, session_factory, upgrade_database
from serving.errors import ServiceError
from serving.journal import AuditJournal
from serving.limits import parse_score_request, rejected_denial
from serving.logs import logger
from serving.page_cache import ResultCache
from serving.plan import daily_plan
from serving.remittance import remittance_denials
from serving.schemas import (
    AFTER_TODAY,
    BEFORE_THE_DENIAL,
    OVER_THE_DENIED_AMOUNT,
    FeedbackIn,
    FeedbackOut,
    PlanOut,
    ScoreRequest,
    StoredScore,
)
from serving.scoring import (
    LoadedModel,
    ModelRejected,
    ModelStore,
    ModelUnavailable,
    ScoredBatch,
    score_denials,
)
from serving.shadow import ShadowScorer, worker_pool
from serving.site_secrets import site_secret
from serving.spool import AuditSpool
from training.specs import TASKS
from training.tracking import configure_tracking
from training.triage_model import prediction_threads

AUDIT_HASH_KEY_FILE = "audit-hash-key"
AUTH_CACHE_SECONDS = 30.0  # a revoked key stops working everywhere within this time
# A read waits at most this long for its own records still on their way: past it, the database
# is struggling and an answer without them beats a reviewer left waiting.
READ_WAIT_SECONDS = 2.0
JOURNAL_FOLDER = "journal"  # under the spool folder: the service's durable audit state


class ServiceState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ModelStore(settings.data_dir / "model-cache")
        self.spool = AuditSpool(settings.audit_spool_dir)
        self.model: LoadedModel | None = None
        self.model_problem: str | None = None
        self.shadow: ShadowScorer | None = None  # the challenger, when one scores in shadow
        self.page_cache = ResultCache(settings.page_cache_entries)  # the heavy pages' results
        self._reload_lock = threading.Lock()
        self._auth_cache: dict[str, tuple[float, Caller]] = {}
        self.engine = None
        self.sessions = None
        self.audit_writer: AuditWriter | None = None
        self.local_audit: LocalStore | None = None  # writes here, spools when refused
        # Set when audit records had to be spooled or a drain failed; cleared by a drain that
        # wrote. The audit path is what notices an outage first, and it never blocks on one.
        self.database_away = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        configure_tracking(self.settings.data_dir)
        repository.use_input_hash_key(self.input_hash_key)
        url = self.settings.resolved_database_url
        upgrade_database(url)
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        self.local_audit = LocalStore(
            repository.audit_writer(self.sessions), self.spool.append, self.spool.set_aside
        )
        journal = AuditJournal(self.spool.folder / JOURNAL_FOLDER)
        journal.replay(self._store_replayed)  # what a killed run had answered, first
        if self.settings.audit_write_behind:
            kept = journal if self.settings.audit_journal else None
            self.audit_writer = AuditWriter(self._audit_store(url), self._spooled, kept)
            self.audit_writer.start()
        self.refresh_model()
        if self.model is None:
            self._load_cached(self.model_problem or "")
        self.refresh_challenger()
        if self.model is None:
            logger.error(
                "no model to serve; /readyz answers 503", extra={"reason": self.model_problem}
            )
        _settle_long_lived_objects()

    def _audit_store(self, url: str) -> LocalStore | ProcessStore:
        """Where audit records are built and written: a worker process unless turned off."""
        assert self.local_audit is not None, "the database is not open yet"
        if not self.settings.audit_worker_process:
            return self.local_audit
        return ProcessStore(url, self.spool.folder, self.local_audit, self.input_hash_key)

    @property
    def input_hash_key(self) -> str:
        """The site's key for the audit log's input hashes (the setting, else generated)."""
        path = self.settings.data_dir / AUDIT_HASH_KEY_FILE
        return site_secret(self.settings.audit_hash_key, path, "DENIAL_TRIAGE_AUDIT_HASH_KEY")

    def _store_replayed(self, jobs: list[AuditJob]) -> None:
        assert self.local_audit is not None, "the database is not open yet"
        self._spooled(self.local_audit.store(jobs))

    def stop(self) -> None:
        self._retire_shadow()
        if self.audit_writer is not None:
            self.audit_writer.close()
        self.drain_spool()
        if self.engine is not None:
            self.engine.dispose()

    @contextmanager
    def session(self, caller: str | None = None) -> Iterator[Session]:
        """A database session; given a caller, it first sees the scores answered to that
        caller (waiting at most :data:`READ_WAIT_SECONDS`), never waiting for others'."""
        assert self.sessions is not None, "the service has not started"
        if caller is not None and self.audit_writer is not None:
            self.audit_writer.wait_for_caller(caller, READ_WAIT_SECONDS)
        with self.sessions() as session:
            yield session

    def flush_audit(self) -> None:
        """Wait until the audit records of every answered request are written (or spooled)."""
        if self.audit_writer is not None:
            self.audit_writer.flush()

    def pending_denial(self, denial_id: str) -> bool:
        """Whether ``denial_id`` was scored and answered, its audit record still on its way to
        the database (queued, journaled or being written): scored, though no read finds it yet."""
        return self.audit_writer is not None and self.audit_writer.pending_denial(denial_id)

    # ------------------------------------------------------------------ models

    def refresh_model(self) -> dict[str, object]:
        """Load the champion if the alias moved; keep the current model when anything fails."""
        with self._reload_lock:
            version, problem = self.store.registered_champion()
            if version is None:
                return self._keep(problem or "")
            if self.model is not None and self.model.version == version:
                return self.readiness()
            try:
                loaded = self.store.load_version(version)
            except Exception as exc:  # refused by the canary, or failed to load: keep serving
                metrics.MODEL_RELOADS.labels("refused").inc()
                return self._keep(f"version {version} was refused: {exc}")
            self.model, self.model_problem = loaded, None  # one assignment: atomic swap
            metrics.MODEL_RELOADS.labels("loaded").inc()
            metrics.MODEL_VERSION.set(float(version))
            logger.info("model loaded", extra={"model_version": version})
            return self.readiness()

    def refresh_challenger(self) -> None:
        """Follow the challenger alias: load a new challenger into a shadow worker, retire the
        worker when the alias is gone or names the champion; keep it when the registry fails."""
        if self.settings.shadow_share <= 0:
            return
        with self._reload_lock:
            try:
                version = self.store.challenger_version()
            except Exception as exc:  # the registry being away changes nothing here
                logger.warning("challenger not checked", extra={"reason": str(exc)})
                return
            champion = self.model.version if self.model is not None else None
            if version is None or version == champion:
                self._retire_shadow()
            elif self.shadow is None or self.shadow.version != version or self.shadow.broken:
                self._start_shadow(version)  # new, or its worker died: a fresh worker

    def _start_shadow(self, version: str) -> None:
        try:
            self.store.load_version(version, current=False)  # checked by the canary, cached
        except Exception as exc:  # refused or failed: the champion serves on, alone
            logger.warning(
                "challenger refused", extra={"model_version": version, "reason": str(exc)}
            )
            return
        pool = worker_pool(
            self.store.model_file(version),
            version,
            self.settings.resolved_database_url,
            self.input_hash_key,
        )
        self._retire_shadow()
        self.shadow = ShadowScorer(version, self.settings.shadow_share, pool)
        metrics.SHADOW_VERSION.set(float(version))
        logger.info("challenger in shadow", extra={"model_version": version})

    def _retire_shadow(self) -> None:
        shadow, self.shadow = self.shadow, None  # requests stop handing over first
        if shadow is not None:
            shadow.close()
            metrics.SHADOW_VERSION.set(0)
            logger.info("challenger retired", extra={"model_version": shadow.version})

    def flush_shadow(self) -> None:
        """Wait until the challenger has stored (or failed) every job handed to it so far."""
        if self.shadow is not None:
            self.shadow.flush()

    def _keep(self, problem: str) -> dict[str, object]:
        self.model_problem = problem
        logger.warning("model not changed", extra={"reason": problem})
        return self.readiness()

    def _load_cached(self, problem: str) -> None:
        try:
            self.model = self.store.load_cached()
        except (ModelUnavailable, ModelRejected, OSError) as exc:
            self.model_problem = f"{problem}; {exc}" if problem else str(exc)
            return
        metrics.MODEL_VERSION.set(float(self.model.version))
        self.model_problem = f"serving cached version {self.model.version}: {problem}"

    def readiness(self) -> dict[str, object]:
        model = self.model
        spooled = self.spool.pending()
        return {
            "ready": model is not None,
            "model_version": model.version if model else None,
            "model_source": model.source if model else None,
            "mapping_version": model.mapping_version if model else None,
            "problem": self.model_problem,
            # Scoring goes on while the database is away: this says so, it does not fail ready.
            "database_reachable": not (self.database_away and spooled),
            "audit_records_spooled": spooled,
        }

    def _model(self) -> LoadedModel:
        model = self.model
        if model is None:
            raise ServiceError(503, self.model_problem or "no model is loaded")
        return model

    # ------------------------------------------------------------------ access

    def authenticate(self, key: str) -> Caller | None:
        digest = repository.hash_key(key)
        cached = self._auth_cache.get(digest)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        assert self.sessions is not None, "the service has not started"
        try:
            # Not through self.session(): a key check reads no audit records, so it need not
            # wait for the audit writer, which may be waiting out a locked database.
            with self.sessions() as session:
                record = repository.authenticate(session, key)
                caller = Caller(record.name, record.role) if record else None
        except SQLAlchemyError as exc:
            if cached:
                # Scores are answered while the database is away: a key this process saw
                # valid keeps working; a revocation made meanwhile holds once it is back.
                return cached[1]
            raise ServiceError(503, "keys cannot be checked: the database is unreachable") from exc
        if caller is None:
            self._auth_cache.pop(digest, None)  # revoked: not to be trusted in an outage
        else:
            self._auth_cache[digest] = (time.monotonic() + AUTH_CACHE_SECONDS, caller)
        return caller

    # ------------------------------------------------------------------ scoring

    def score_body(self, body: bytes, caller: Caller, request_id: str) -> ScoredBatch:
        """Score a request's JSON body, refused within limits before any denial is validated."""
        parsed = parse_score_request(body, self.settings.max_batch_denials)
        return self.score(parsed.request, caller, request_id, parsed.positions, parsed.rejected)

    def score(
        self,
        body: ScoreRequest,
        caller: Caller,
        request_id: str,
        positions: list[int] | None = None,
        rejected: list[dict[str, Any]] | None = None,
    ) -> ScoredBatch:
        """Score a validated request. ``positions``: each denial's index in the body's list
        (its own order by default); ``rejected``: the denials already set aside by the schema
        (``on_error: "skip"``), to which those breaking a contract rule are added."""
        if len(body.denials) > self.settings.max_batch_denials:
            raise ServiceError(
                413,
                f"{len(body.denials)} denials in one request; "
                f"the limit is {self.settings.max_batch_denials}",
            )
        payload = [denial.model_dump(mode="json") for denial in body.denials]
        positions = positions if positions is not None else list(range(len(payload)))
        rejected = list(rejected or [])
        # Clean, plainly typed rows skip pandas; anything else gets the full contract check.
        denials = clean_records(payload)
        if denials is None and body.on_error == "skip":
            denials, payload, contract_rejects = _contract_rows_kept(payload, positions)
            rejected = sorted([*rejected, *contract_rejects], key=lambda r: r["index"])
        elif denials is None:
            denials = _contract_frame(payload, positions)
        scored = self._score(denials, payload, caller, request_id, body.explain, body.top_reasons)
        return replace(scored, rejected=rejected)

    def score_remittance(
        self, content: bytes, filename: str, caller: Caller, request_id: str
    ) -> ScoredBatch:
        frame = remittance_denials(content, filename)
        if len(frame) > self.settings.max_batch_denials:
            raise ServiceError(
                413,
                f"the remittance holds {len(frame)} denials; the limit is "
                f"{self.settings.max_batch_denials}",
            )
        if frame.empty:
            return self._response([], self._model(), request_id)
        payload = json.loads(frame.to_json(orient="records", date_format="iso"))
        return self._score(frame, payload, caller, request_id, True, 5)

    def _score(
        self,
        denials: pd.DataFrame | list[dict[str, Any]],
        payload: list[dict[str, Any]],
        caller: Caller,
        request_id: str,
        explain: bool,
        top: int,
    ) -> ScoredBatch:
        model = self._model()
        if not payload:  # every denial of a skipping request was set aside
            return self._response([], model, request_id)
        # The audit worker keeps a core busy under load: LightGBM leaves it that core.
        busy = 1 if isinstance(getattr(self.audit_writer, "store", None), ProcessStore) else 0
        threads = prediction_threads(len(payload), busy_cores=busy)
        results = score_denials(model.triage, denials, explain=explain, top=top, threads=threads)
        response = self._response(results, model, request_id)
        self._audit(response, payload, caller)
        shadow = self.shadow  # read once: the poll may retire it meanwhile
        if shadow is not None:
            shadow.offer(response, payload)  # never waits: a full queue drops, counted
        metrics.DENIALS_SCORED.inc(len(results))
        metrics.REVIEW_FLAGS.inc(sum(r["requires_human_review"] for r in results))
        return response

    @staticmethod
    def _response(
        results: list[dict[str, Any]], model: LoadedModel, request_id: str
    ) -> ScoredBatch:
        return ScoredBatch(
            request_id=request_id,
            model_version=model.version,
            mapping_version=model.mapping_version,
            scored_at=dt.datetime.now(dt.UTC),
            results=results,
        )

    # ------------------------------------------------------------------ audit

    def _audit(
        self,
        response: ScoredBatch,
        payload: list[dict[str, Any]],
        caller: Caller,
    ) -> None:
        """One audit record per denial, written behind the request (or here, when write-behind
        is off); spooled to disk when the database is away."""
        job = AuditJob(
            request_id=response.request_id,
            model_version=response.model_version,
            mapping_version=response.mapping_version,
            scored_at=response.scored_at,
            caller=caller.name,
            results=response.results,
            payload=payload,
        )
        if self.audit_writer is not None:
            self.audit_writer.submit(*job.parts())  # journaled (one fsync) before the answer
            return
        assert self.local_audit is not None, "the service has not started"
        self._spooled(self.local_audit.store([job]))

    def _spooled(self, records: int) -> None:
        if records:
            self.database_away = True
            metrics.AUDIT_SPOOLED.inc(records)
            logger.warning(
                "audit records spooled: database unreachable", extra={"records": records}
            )

    def drain_spool(self) -> int:
        # files(), not pending(): the drain reads every file anyway; count nothing twice.
        if self.sessions is None or not self.spool.files():
            return 0
        try:
            written = self.spool.drain(repository.audit_writer(self.sessions))
        except SQLAlchemyError:
            self.database_away = True
            return 0
        self.database_away = False
        logger.info("audit spool drained", extra={"records": written})
        return written

    def plan(self, hours: float, queues: list[str], day: dt.date) -> PlanOut:
        """Today's plan per owner queue from the open denials' latest scores (serving.plan);
        a queue the loaded model's mapping does not declare is refused (422), not planned
        empty."""
        model = self.model
        known = model.triage.features.mapping_.owner_queues if model is not None else ()
        unknown = [queue for queue in queues if known and queue not in known]
        if unknown:
            message = f"queue: unknown owner queue {unknown[0]!r}; use one of {', '.join(known)}"
            raise ServiceError(422, message)
        try:
            with self.session() as session:
                records = repository.open_latest_scores(session, queues)
        except SQLAlchemyError as exc:
            raise ServiceError(503, f"the audit log {_unavailable(exc)}; retry later") from exc
        plan = daily_plan(records, hours=hours, day=day, queues=queues)
        return PlanOut.model_validate(dataclasses.asdict(plan))

    def latest_score(self, denial_id: str, today: dt.date) -> StoredScore:
        """A denial's newest score: answered a moment ago and still on its way to the
        database, it is read from its job, without waiting for the write (or for others').
        Its days to deadline, urgency and priority are counted on ``today`` (serving.live)."""
        try:
            with self.session() as session:
                record = self._latest_record(session, denial_id)
        except SQLAlchemyError as exc:
            raise ServiceError(503, f"the audit log {_unavailable(exc)}; retry later") from exc
        if record is None:
            raise ServiceError(404, f"denial {denial_id!r} has not been scored")
        return _stored_score(record, today)

    def _latest_record(self, session: Session, denial_id: str) -> Any:
        """The newest audit record of a denial: still on its way to the database (answered a
        moment ago, read from its job) or stored; None when it was never scored."""
        pending = self.audit_writer.pending_record(denial_id) if self.audit_writer else None
        if pending is not None:
            return SimpleNamespace(**pending)
        return repository.latest_score(session, denial_id)

    # ------------------------------------------------------------------ feedback

    def save_feedback(self, body: FeedbackIn, caller: Caller) -> FeedbackOut:
        """Store feedback on a scored denial, once per caller and idempotency key.

        404 for a denial never scored; 422 naming the field when the outcome does not fit the
        denial's latest score, or when the database refuses a value (resending cannot help);
        409 for a reused key; 503 only for an outage, which a retry with the same key rides out.
        """
        payload = body.model_dump(mode="json", exclude={"idempotency_key"})
        try:
            with self.session() as session:
                _check_against_score(self._latest_record(session, body.denial_id), body)
                stored, created = repository.save_feedback(
                    session, body.idempotency_key, payload, caller.name
                )
                return FeedbackOut(
                    id=stored.id,
                    denial_id=stored.denial_id,
                    idempotency_key=stored.idempotency_key,
                    created=created,
                    received_at=stored.received_at,
                )
        except repository.FeedbackConflict as exc:
            raise ServiceError(409, str(exc)) from exc
        except (DataError, IntegrityError) as exc:
            raise ServiceError(422, _refused(exc)) from exc
        except SQLAlchemyError as exc:
            raise ServiceError(
                503,
                f"feedback cannot be stored now: the database {_unavailable(exc)}; "
                "retry with the same idempotency key",
            ) from exc


def _check_against_score(record: Any, body: FeedbackIn) -> None:
    """Refuse feedback on a denial never scored, or an outcome its latest score rules out.

    Scores recorded before revision 0002 carry no facts: their outcomes are checked only by
    :class:`FeedbackIn`, since there is no denied amount or date to hold them to.
    """
    if record is None:
        raise ServiceError(
            404, f"denial {body.denial_id!r} has not been scored; feedback is taken on scores"
        )
    facts = record.facts or {}
    problems = []
    denied = facts.get("denied_amount")
    if body.recovered_amount is not None and denied is not None and body.recovered_amount > denied:
        problems.append(_field_problem("recovered_amount", OVER_THE_DENIED_AMOUNT))
    # Scores of 835 files keep the date as a timestamp ("2026-09-02T00:00:00.000"): its day.
    denied_on = str(facts.get("denial_date") or "")[:10]
    if body.resolved_date is not None and body.resolved_date.isoformat() < denied_on:
        problems.append(_field_problem("resolved_date", BEFORE_THE_DENIAL))
    # A live check, against the day the feedback arrives (UTC, like its received_at).
    if body.resolved_date is not None and body.resolved_date > dt.datetime.now(dt.UTC).date():
        problems.append(_field_problem("resolved_date", AFTER_TODAY))
    if problems:
        raise ServiceError(422, problems)


def _field_problem(field: str, message: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": message}


def _refused(error: DataError | IntegrityError) -> list[dict[str, Any]]:
    """A value the database will never take, answered as the request's fault (no retry)."""
    kind = type(error).__name__
    return [
        {
            "loc": ["body"],
            "msg": f"the database refused this feedback ({kind}): a value does not fit where "
            "it is stored; correct the request, resending it unchanged cannot succeed",
        }
    ]


def _stored_score(record: Any, today: dt.date) -> StoredScore:
    """A score as read back, from an audit record (stored, or still on its way), its priority
    counted on ``today``."""
    score = dict(record.outputs)
    score["priority"] = live.priority_on_day(score["priority"], today)
    for task in TASKS:
        score[task] = {**score[task], "explanation": (record.explanation or {}).get(task)}
    return StoredScore(
        denial_id=record.denial_id,
        request_id=record.request_id,
        scored_at=record.scored_at,
        model_version=record.model_version,
        mapping_version=record.mapping_version,
        input_hash=record.input_hash,
        score=score,
    )


def _unavailable(error: SQLAlchemyError) -> str:
    """Why the database could not answer, in the caller's words: away (connection refused or
    cut, SQLite locked), or refusing what it was sent, which is a defect of this service to
    report with the request id, not an outage to wait out."""
    if isinstance(error, OperationalError | InterfaceError):
        return "is unreachable"
    return f"refused the request ({type(error).__name__})"


def _settle_long_lived_objects() -> None:
    """Keep what start-up loaded (libraries, the model: some 400,000 objects) out of the
    garbage collector's full passes, each of which walked all of them and stalled every
    request for a few hundred milliseconds, several times per 1,000-denial request."""
    gc.collect()
    gc.freeze()


def _contract_frame(payload: list[dict[str, Any]], positions: list[int]) -> pd.DataFrame:
    """Rows through the contract; every broken rule answers 422 with its field path."""
    result = validate(pd.DataFrame(payload))
    if not result.ok:
        details = [
            {"loc": ["body", "denials", positions[(e.row or 1) - 1], e.column], "msg": e.reason}
            for e in result.errors
        ]
        raise ServiceError(422, details)
    return result.frame


def _contract_rows_kept(
    payload: list[dict[str, Any]], positions: list[int]
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows that keep every contract rule, their payload, and the others set aside with
    their index in the request and their field errors (``on_error: "skip"``)."""
    result = validate(pd.DataFrame(payload))
    by_row: dict[int, list[dict[str, Any]]] = {}
    for error in result.errors:
        by_row.setdefault((error.row or 1) - 1, []).append(
            {"loc": [error.column], "msg": error.reason}
        )
    rejected = [
        rejected_denial(positions[row], errors, len(errors)) for row, errors in by_row.items()
    ]
    kept = [row for row in range(len(payload)) if row not in by_row]
    frame = result.frame.iloc[kept].reset_index(drop=True)
    return frame, [payload[row] for row in kept], rejected
