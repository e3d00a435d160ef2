"""Reading and writing the service's records: plain functions over a SQLAlchemy session.

Each writing function commits its own unit of work, because its guarantees (a key shown once,
an audit batch written once, feedback stored once per idempotency key) hold only once
committed. Callers should pass a session with no other pending changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Subquery,
    Table,
    and_,
    case,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, sessionmaker

from serving import worklist_records as worklist
from serving.records import (
    ApiKey,
    DenialStatus,
    Feedback,
    LatestScore,
    PageSession,
    Role,
    ScoreRecord,
    ShadowScore,
    utc_now,
)

KEY_SCHEME = "dt"
KEY_ID_LENGTH = 8
KEY_SECRET_BYTES = 32
SESSION_ID_BYTES = 32  # a page session's id: as hard to guess as a key's secret
# Ended and expired page sessions are kept this long (who was signed in when), then deleted.
SESSIONS_KEPT = dt.timedelta(days=30)
# Longest well-formed key: scheme, id, two underscores and the base64 secret, with slack.
MAX_KEY_LENGTH = 128
FEEDBACK_FIELDS = (
    "denial_id",
    "confirmed_root_cause",
    "corrected_root_cause",
    "resolution",
    "recovered_amount",
    "resolved_date",
    "reviewer_note",
)
OUTCOME_COLUMNS = ["resolution", "recovered_amount", "resolved_date"]
FEEDBACK_LABEL_COLUMNS = ["denial_id", "root_cause", *OUTCOME_COLUMNS]
AUDIT_FIELDS = (
    "record_id",
    "request_id",
    "denial_id",
    "scored_at",
    "caller",
    "model_version",
    "mapping_version",
    "input_hash",
    "outputs",
    "explanation",
)
# What a score record keeps of its denial beside the input hash: what the reviewers' worklist
# and dashboard show and filter by. Nothing that identifies a patient, a claim or a provider.
DENIAL_FACTS = (
    "payer_id",
    "payer_type",
    "claim_type",
    "specialty",
    "procedure_code",
    "carc_codes",
    "rarc_codes",
    "billed_amount",
    "denied_amount",
    "denial_date",
    "payer_name",  # only 835s ingested through the service carry it; the contract does not
)


class UnknownRole(ValueError):
    """A key was asked for with a role that does not exist."""


class KeyNameTaken(ValueError):
    """An active key already has this name."""


class KeyNotFound(LookupError):
    """No key has this name or id."""


class FeedbackConflict(ValueError):
    """An idempotency key was reused with a different body."""

    def __init__(self, idempotency_key: str) -> None:
        super().__init__(
            f"idempotency key {idempotency_key!r} was already used for different feedback; "
            "send a new key for new feedback, or resend the original body unchanged"
        )
        self.idempotency_key = idempotency_key


# ---------------------------------------------------------------------------- canonical JSON


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types: dates as ISO text, numpy scalars unwrapped, NaN as null.

    PostgreSQL's JSON types reject NaN, and the spool writes JSON lines. Audit documents do not
    come through here whole (a Python walk of every value cost about 0.4 ms a denial): orjson
    encodes them (:func:`json_bytes`) and hands over only the values it does not know.
    """
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray | pd.Series):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float | Decimal):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    if isinstance(value, dt.date):  # datetimes and pandas Timestamps too
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def json_bytes(document: Any) -> bytes:
    """``document`` as JSON, by orjson, with :func:`json_safe`'s values: NaN and infinities as
    null, dates as ISO text, and what orjson does not know (numpy values, Decimal, pandas' NA)
    made plain by :func:`json_safe` itself."""
    return orjson.dumps(document, default=json_safe, option=orjson.OPT_NON_STR_KEYS)


def json_text(document: Any) -> str:
    """The JSON text the database stores: every engine's JSON serializer (orjson, about six
    times json.dumps on audit documents), so a record built elsewhere with NaN or numpy
    values is stored as plain JSON without a walk of its own."""
    return json_bytes(document).decode()


def plain_json(document: Any) -> Any:
    """``document`` in plain JSON types, as :func:`json_safe` gives it, through orjson and back
    (about a sixth of json_safe's time on audit documents)."""
    return orjson.loads(json_bytes(document))


def canonical_json(document: Any) -> bytes:
    """The canonical JSON of ``document`` (sorted keys, no spaces), as UTF-8."""
    return json.dumps(json_safe(document), sort_keys=True, separators=(",", ":")).encode("utf-8")


def canonical_hash(document: Any) -> str:
    """SHA-256 hex of the canonical JSON of ``document``."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


# The site's key for the audit log's input hashes, set once when a service (or its audit
# worker) starts: an unkeyed hash of a denial could be confirmed by guessing its fields.
_INPUT_HASH_KEY: bytes | None = None


def use_input_hash_key(key: str | bytes) -> None:
    """Key every input hash this process makes from now on (see :func:`input_hash`)."""
    global _INPUT_HASH_KEY
    _INPUT_HASH_KEY = key.encode("utf-8") if isinstance(key, str) else key


def input_hash(denial: Mapping[str, Any]) -> str:
    """HMAC-SHA256 hex, under the site's key, of the canonical JSON of a scored denial: the
    holder of the key and the denial can show it was scored; nobody else learns anything."""
    if _INPUT_HASH_KEY is None:
        raise RuntimeError("no key for input hashes: call use_input_hash_key at start-up")
    return hmac.new(_INPUT_HASH_KEY, canonical_json(denial), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------- API keys


def hash_key(key: str) -> str:
    """The stored form of a key (or of a page session's id): SHA-256 hex of the whole text."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key: str) -> str | None:
    """The public id inside a key of the form ``dt_<id>_<secret>``, or None if malformed."""
    # The id is hex and fixed-length, so the ``_`` and ``-`` a base64 secret may hold
    # cannot make the split ambiguous.
    head = f"{KEY_SCHEME}_"
    identifier = key[len(head) : len(head) + KEY_ID_LENGTH]
    rest = key[len(head) + KEY_ID_LENGTH :]
    if not key.startswith(head) or len(identifier) != KEY_ID_LENGTH or not rest.startswith("_"):
        return None
    return identifier if len(rest) > 1 else None


def create_api_key(session: Session, role: str, name: str) -> tuple[str, ApiKey]:
    """Create a key; returns the plaintext key (shown once, never stored) and its row."""
    try:
        role = Role(role).value
    except ValueError as exc:
        choices = ", ".join(r.value for r in Role)
        raise UnknownRole(f"unknown role {role!r}: choose one of {choices}") from exc
    name = name.strip()
    if not name:
        raise ValueError("a key needs a name (who or what will use it)")
    identifier = secrets.token_hex(KEY_ID_LENGTH // 2)
    key = f"{KEY_SCHEME}_{identifier}_{secrets.token_urlsafe(KEY_SECRET_BYTES)}"
    row = ApiKey(name=name, role=role, key_prefix=identifier, key_hash=hash_key(key))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise KeyNameTaken(f"an active key is already named {name!r}: revoke it first") from exc
    return key, row


def authenticate(session: Session, key: str) -> ApiKey | None:
    """The active key matching ``key``, or None (malformed, unknown or revoked)."""
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
        return None
    identifier = key_id(key)
    if identifier is None:
        return None
    presented = hash_key(key)
    candidates = session.scalars(select(ApiKey).where(ApiKey.key_prefix == identifier)).all()
    for candidate in candidates:
        # Constant time, so response timing says nothing about how much of a hash matched.
        if hmac.compare_digest(candidate.key_hash, presented):
            return candidate if candidate.active else None
    return None


def find_api_key(session: Session, name_or_id: str) -> ApiKey:
    """The active key named ``name_or_id``, else the key with that numeric id."""
    row = session.scalars(
        select(ApiKey).where(ApiKey.name == name_or_id, ApiKey.revoked_at.is_(None))
    ).first()
    if row is None and name_or_id.isdigit():
        row = session.get(ApiKey, int(name_or_id))
    if row is None:
        raise KeyNotFound(f"no active key named {name_or_id!r} and no key with that id")
    return row


def revoke_api_key(session: Session, name_or_id: str) -> ApiKey:
    """Revoke a key by name or id, ending its page sessions in the same commit; revoking twice
    keeps the first revocation time."""
    row = find_api_key(session, name_or_id)
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        _end_sessions(session, PageSession.key_id == row.id, row.revoked_at)
        session.commit()
    return row


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


# ---------------------------------------------------------------------------- audit log


def audit_record(
    *,
    request_id: str,
    denial: Mapping[str, Any],
    caller: str,
    model_version: str,
    mapping_version: str,
    outputs: Mapping[str, Any],
    explanation: Mapping[str, Any],
    scored_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """One audit record as a JSON-safe dict, ready for :func:`record_scores` or the spool.

    The denial itself is kept only as the keyed hash of its canonical JSON, plus the few
    non-identifying facts the reviewers' pages route and filter by (:data:`DENIAL_FACTS`), so
    claim ids, providers, diagnoses and service dates never reach the log. ``record_id`` is
    fixed here, once, so a record written late from the spool is still written only once.
    """
    return {
        "record_id": str(uuid.uuid4()),
        "request_id": request_id,
        "denial_id": str(denial["denial_id"]),
        "scored_at": (scored_at or utc_now()).isoformat(),
        "caller": caller,
        "model_version": model_version,
        "mapping_version": mapping_version,
        "input_hash": input_hash(denial),
        "outputs": plain_json(outputs),
        "explanation": plain_json(explanation),
        "facts": denial_facts(denial),
    }


def denial_facts(denial: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`DENIAL_FACTS` a denial carries, as plain JSON (absent ones left out), and the
    keyed hash of its claim id, so the worklist finds a claim without keeping its id."""
    facts = {name: denial[name] for name in DENIAL_FACTS if denial.get(name) is not None}
    if denial.get("claim_id"):
        facts["claim_key"] = claim_key(str(denial["claim_id"]))
    return plain_json(facts)


def claim_key(claim_id: str) -> str:
    """HMAC-SHA256 hex of a claim id under the site's input-hash key: the same claim id always
    gives the same key, and nobody without the site's key can tell which claim it is."""
    if _INPUT_HASH_KEY is None:
        raise RuntimeError("no key for claim keys: call use_input_hash_key at start-up")
    message = b"claim_id:" + claim_id.strip().encode("utf-8")
    return hmac.new(_INPUT_HASH_KEY, message, hashlib.sha256).hexdigest()


def record_scores(session: Session, records: Sequence[Mapping[str, Any]]) -> int:
    """Write audit records; returns how many were new (already-written record ids are skipped)."""
    if not records:
        return 0
    rows = [_score_row(record) for record in records]
    table: Table = ScoreRecord.__table__  # type: ignore[assignment]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # ON CONFLICT DO NOTHING rather than read-then-write: two replicas draining the same
    # records at once must not fail, and the RETURNING rows count only what was new.
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.record_id])
        .returning(table.c.record_id)
    )
    written = [row.record_id for row in session.execute(statement, rows).all()]
    worklist.keep_latest(session, written)  # in the same commit, so the two never disagree
    session.commit()
    return len(written)


def _score_row(record: Mapping[str, Any]) -> dict[str, Any]:
    # Documents are not walked here: the engine's serializer (json_text) makes NaN and numpy
    # values of records built elsewhere plain as it encodes, once.
    row = {field: record[field] for field in AUDIT_FIELDS}
    row["facts"] = record.get("facts")  # records spooled before revision 0002 have none
    if isinstance(row["scored_at"], str):  # as the spool stores it
        row["scored_at"] = dt.datetime.fromisoformat(row["scored_at"])
    return row


def audit_writer(sessions: sessionmaker[Session]) -> Callable[[Sequence[Mapping[str, Any]]], int]:
    """A ``write(records) -> int`` over fresh sessions, for the spool's drain and fallback."""

    def write(records: Sequence[Mapping[str, Any]]) -> int:
        with sessions() as session:
            return record_scores(session, records)

    return write


def latest_score(session: Session, denial_id: str) -> ScoreRecord | None:
    """The most recent audit record of a denial, or None if it was never scored."""
    return session.scalars(
        select(ScoreRecord)
        .where(ScoreRecord.denial_id == denial_id)
        .order_by(ScoreRecord.scored_at.desc(), ScoreRecord.id.desc())
        .limit(1)
    ).first()


def count_scores(session: Session) -> int:
    """How many audit records the database holds."""
    return session.scalar(select(func.count()).select_from(ScoreRecord)) or 0


# ---------------------------------------------------------------------------- shadow scores

# What the live comparison reads of each shadow score: the pair of answers to one request.
SHADOW_PAIR_COLUMNS = (
    "denial_id",
    "scored_at",
    "champion_version",
    "root_cause",
    "recovery_probability",
    "priority",
    "champion_root_cause",
    "champion_recovery_probability",
    "champion_priority",
)


def record_shadow_scores(session: Session, records: Sequence[Mapping[str, Any]]) -> int:
    """Write the challenger's shadow scores (built by :func:`serving.shadow.shadow_records`);
    returns how many were written."""
    if not records:
        return 0
    session.execute(ShadowScore.__table__.insert(), [dict(record) for record in records])
    session.commit()
    return len(records)


def shadow_writer(sessions: sessionmaker[Session]) -> Callable[[Sequence[Mapping[str, Any]]], int]:
    """A ``write(records) -> int`` of shadow scores over fresh sessions, for the worker."""

    def write(records: Sequence[Mapping[str, Any]]) -> int:
        with sessions() as session:
            return record_shadow_scores(session, records)

    return write


def shadow_pairs(session: Session, challenger_version: str) -> pd.DataFrame:
    """Every shadow score of a challenger version beside the champion's answer, oldest
    first (:data:`SHADOW_PAIR_COLUMNS`); the index on version and denial id finds them."""
    columns = [getattr(ShadowScore, name) for name in SHADOW_PAIR_COLUMNS]
    query = (
        select(*columns)
        .where(ShadowScore.model_version == challenger_version)
        .order_by(ShadowScore.scored_at, ShadowScore.id)
    )
    return pd.DataFrame(session.execute(query).all(), columns=list(SHADOW_PAIR_COLUMNS))


def latest_shadow_version(session: Session) -> str | None:
    """The challenger version of the newest shadow score, or None when there is none."""
    query = select(ShadowScore.model_version).order_by(ShadowScore.id.desc()).limit(1)
    return session.scalar(query)


# ---------------------------------------------------------------------------- feedback


def save_feedback(
    session: Session, idempotency_key: str, payload: Mapping[str, Any], caller: str
) -> tuple[Feedback, bool]:
    """Store feedback once per caller and idempotency key; returns the row and whether it is new.

    The same key with the same body from the same caller (a client retrying after a timeout)
    returns the stored row; with a different body it raises :class:`FeedbackConflict`. Another
    caller's use of the same key is none of this caller's business: it is stored apart.
    """
    fields = _feedback_fields(payload)
    request_hash = canonical_hash(fields)
    existing = _feedback_by_key(session, caller, idempotency_key)
    if existing is None:
        row = Feedback(
            idempotency_key=idempotency_key, caller=caller, request_hash=request_hash, **fields
        )
        session.add(row)
        if fields["resolution"]:  # the worklist's status follows the latest outcome
            worklist.note_outcome(
                session,
                fields["denial_id"],
                fields["resolution"],
                caller,
                fields["recovered_amount"],
                fields["resolved_date"],
            )
        try:
            session.commit()
            return row, True
        except IntegrityError:
            # A concurrent duplicate won the unique constraint; its row decides.
            session.rollback()
            existing = _feedback_by_key(session, caller, idempotency_key)
            if existing is None:
                raise
    if existing.request_hash != request_hash:
        raise FeedbackConflict(idempotency_key)
    return existing, False


def _feedback_by_key(session: Session, caller: str, idempotency_key: str) -> Feedback | None:
    return session.scalars(
        select(Feedback).where(
            Feedback.caller == caller, Feedback.idempotency_key == idempotency_key
        )
    ).first()


def _feedback_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(payload) - set(FEEDBACK_FIELDS))
    if unknown:
        raise ValueError(f"unknown feedback fields {unknown}; expected some of {FEEDBACK_FIELDS}")
    if not payload.get("denial_id"):
        raise ValueError("feedback needs the denial_id it is about")
    fields = {name: payload.get(name) for name in FEEDBACK_FIELDS}
    if isinstance(fields["resolved_date"], str):
        fields["resolved_date"] = dt.date.fromisoformat(fields["resolved_date"])
    if fields["recovered_amount"] is not None:
        fields["recovered_amount"] = float(fields["recovered_amount"])
    return fields


def feedback_frame(session: Session) -> pd.DataFrame:
    """Feedback as contract labels, one row per denial, for ``train --include-feedback``.

    ``root_cause`` comes from the latest feedback that names one (a correction, or a
    confirmation of the category the service had scored); ``resolution``, ``recovered_amount``
    and ``resolved_date`` come together from the latest feedback that gives a resolution, so a
    later note without an outcome does not erase an earlier outcome.
    """
    feedback = _feedback_table(session)
    if feedback.empty:
        return _empty_labels()
    feedback["root_cause"] = _root_causes(session, feedback)
    causes = _latest_where(feedback, "root_cause", ["root_cause"])
    outcomes = _latest_where(feedback, "resolution", OUTCOME_COLUMNS)
    labels = causes.merge(outcomes, on="denial_id", how="outer")
    labels["resolved_date"] = pd.to_datetime(labels["resolved_date"]).astype("datetime64[s]")
    labels["recovered_amount"] = labels["recovered_amount"].astype("float64")
    for column in ("root_cause", "resolution"):
        labels[column] = labels[column].astype(object).where(labels[column].notna(), None)
    return labels[FEEDBACK_LABEL_COLUMNS].sort_values("denial_id", ignore_index=True)


def _feedback_table(session: Session) -> pd.DataFrame:
    columns = [Feedback.id, Feedback.received_at, *(getattr(Feedback, f) for f in FEEDBACK_FIELDS)]
    rows = session.execute(select(*columns).order_by(Feedback.received_at, Feedback.id)).all()
    return pd.DataFrame(rows, columns=["id", "received_at", *FEEDBACK_FIELDS])


def _root_causes(session: Session, feedback: pd.DataFrame) -> pd.Series:
    """The corrected category, else the scored one where the reviewer confirmed it."""
    confirmed = feedback["confirmed_root_cause"].eq(True) & feedback["corrected_root_cause"].isna()
    causes = feedback["corrected_root_cause"].astype(object)
    if confirmed.any():
        causes = causes.where(~confirmed, _scored_causes(session, feedback[confirmed]))
    return causes.where(causes.notna(), None)


def _scored_causes(session: Session, confirmed: pd.DataFrame) -> pd.Series:
    """For each confirming feedback, the top category of the last score it could have seen."""
    confirming = select(Feedback.denial_id).where(Feedback.confirmed_root_cause.is_(True))
    rows = session.execute(
        select(ScoreRecord.denial_id, ScoreRecord.scored_at, ScoreRecord.outputs).where(
            ScoreRecord.denial_id.in_(confirming)
        )
    ).all()
    scores = pd.DataFrame(rows, columns=["denial_id", "scored_at", "outputs"])
    if scores.empty:
        return pd.Series(None, index=confirmed.index, dtype=object)
    matched = pd.merge_asof(
        confirmed[["received_at", "denial_id"]].reset_index().sort_values("received_at"),
        scores.sort_values("scored_at"),
        left_on="received_at",
        right_on="scored_at",
        by="denial_id",
        direction="backward",
    ).set_index("index")
    return matched["outputs"].map(scored_root_cause).reindex(confirmed.index)


def scored_root_cause(outputs: Any) -> str | None:
    """The top root-cause category in a score's stored outputs.

    ``outputs["root_cause"]["category"]`` as the scoring response writes it, else the most
    probable of ``outputs["root_cause"]["probabilities"]``.
    """
    root_cause = outputs.get("root_cause") if isinstance(outputs, Mapping) else None
    if not isinstance(root_cause, Mapping):
        return None
    if isinstance(root_cause.get("category"), str):
        return root_cause["category"]
    probabilities = root_cause.get("probabilities")
    if isinstance(probabilities, Mapping) and probabilities:
        return max(probabilities, key=lambda category: probabilities[category])
    return None


def _latest_where(feedback: pd.DataFrame, present: str, columns: list[str]) -> pd.DataFrame:
    """Per denial, ``columns`` of the latest feedback row where ``present`` is set."""
    rows = feedback[feedback[present].notna()]
    return rows.groupby("denial_id", sort=False).tail(1)[["denial_id", *columns]]


def _empty_labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "denial_id": pd.Series(dtype=object),
            "root_cause": pd.Series(dtype=object),
            "resolution": pd.Series(dtype=object),
            "recovered_amount": pd.Series(dtype="float64"),
            "resolved_date": pd.Series(dtype="datetime64[s]"),
        }
    )


# ---------------------------------------------------------------------------- reviewers' pages
#
# The worklist and dashboard read serving.records.LatestScore, kept on write by
# serving.worklist_records; what is here reads feedback and the latest audit records whole.


def open_latest_scores(session: Session, owner_queues: Sequence[str] = ()) -> list[ScoreRecord]:
    """The latest score of every open denial (no final outcome in feedback), in the given
    owner queues when any, explanations not loaded: what today's plan ranks."""
    resolved = and_(DenialStatus.resolution.is_not(None), DenialStatus.resolution != "open")
    query = (
        select(ScoreRecord)
        .join(LatestScore, LatestScore.score_id == ScoreRecord.id)
        .outerjoin(DenialStatus, DenialStatus.denial_id == LatestScore.denial_id)
        .options(defer(ScoreRecord.explanation))
        .where(~resolved)
    )
    if owner_queues:
        query = query.where(LatestScore.owner_queue.in_(list(owner_queues)))
    return list(session.scalars(query.order_by(ScoreRecord.denial_id)))


def latest_scores(session: Session) -> list[ScoreRecord]:
    """Every denial's latest score, explanations not loaded (the "to label" view ranks them)."""
    query = (
        select(ScoreRecord)
        .join(LatestScore, LatestScore.score_id == ScoreRecord.id)
        .options(defer(ScoreRecord.explanation))
    )
    return list(session.scalars(query.order_by(ScoreRecord.denial_id)))


def _latest_outcomes() -> Subquery:
    """Per denial, the latest feedback that records a resolution."""
    rank = func.row_number().over(
        partition_by=Feedback.denial_id, order_by=(Feedback.received_at.desc(), Feedback.id.desc())
    )
    ranked = select(
        Feedback.denial_id, Feedback.resolution, Feedback.recovered_amount, rank.label("rank")
    ).where(Feedback.resolution.is_not(None))
    return ranked.subquery()


def outcome_totals(session: Session) -> list[dict[str, Any]]:
    """Denials and recovered dollars by their latest recorded resolution."""
    outcomes = _latest_outcomes()
    query = (
        select(
            outcomes.c.resolution,
            func.count().label("denials"),
            func.coalesce(func.sum(outcomes.c.recovered_amount), 0.0).label("recovered_dollars"),
        )
        .where(outcomes.c.rank == 1)
        .group_by(outcomes.c.resolution)
        .order_by(outcomes.c.resolution)
    )
    return [dict(row) for row in session.execute(query).mappings()]


def root_cause_reviews(session: Session) -> dict[str, int]:
    """How many denials reviewers confirmed or corrected, by their latest word on it."""
    rank = func.row_number().over(
        partition_by=Feedback.denial_id, order_by=(Feedback.received_at.desc(), Feedback.id.desc())
    )
    corrected = Feedback.corrected_root_cause.is_not(None)
    reviewed = corrected | Feedback.confirmed_root_cause.is_(True)
    verdict = case((corrected, "corrected"), else_="confirmed").label("verdict")
    latest = select(verdict, rank.label("rank")).where(reviewed).subquery()
    query = select(latest.c.verdict, func.count()).where(latest.c.rank == 1)
    rows = session.execute(query.group_by(latest.c.verdict)).all()
    return {"confirmed": 0, "corrected": 0, **{verdict: count for verdict, count in rows}}


def feedback_for_denial(session: Session, denial_id: str) -> list[Feedback]:
    """Every feedback recorded for a denial, newest first."""
    return list(
        session.scalars(
            select(Feedback)
            .where(Feedback.denial_id == denial_id)
            .order_by(Feedback.received_at.desc(), Feedback.id.desc())
        )
    )


# ---------------------------------------------------------------------------- page sessions


@dataclass(frozen=True)
class SignedInKey:
    """An open page session's key: its name and role, and the session's CSRF token."""

    name: str
    role: str
    csrf_token: str


def open_page_session(session: Session, key: ApiKey, lifetime: dt.timedelta) -> str:
    """Open a page session for an active key; returns its id, for the cookie only (only the
    id's hash is stored). Sessions that ended long ago are deleted on the way."""
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    now = utc_now()
    session.add(
        PageSession(
            session_hash=hash_key(session_id),
            key_id=key.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    forgotten = PageSession.expires_at < now - SESSIONS_KEPT
    session.execute(PageSession.__table__.delete().where(forgotten))
    session.commit()
    return session_id


def signed_in_key(session: Session, session_id: str) -> SignedInKey | None:
    """The key of an open page session: not ended, not expired, its key not revoked."""
    row = session.execute(
        select(ApiKey.name, ApiKey.role, PageSession.csrf_token)
        .join(ApiKey, PageSession.key_id == ApiKey.id)
        .where(
            PageSession.session_hash == hash_key(session_id),
            PageSession.ended_at.is_(None),
            PageSession.expires_at > utc_now(),
            ApiKey.revoked_at.is_(None),
        )
    ).first()
    return SignedInKey(*row) if row else None


def end_page_session(session: Session, session_id: str) -> None:
    """End a page session (sign-out); ending it again changes nothing."""
    _end_sessions(session, PageSession.session_hash == hash_key(session_id), utc_now())
    session.commit()


def _end_sessions(session: Session, which: ColumnElement[bool], at: dt.datetime) -> None:
    still_open = PageSession.ended_at.is_(None)
    session.execute(update(PageSession).where(which, still_open).values(ended_at=at))
