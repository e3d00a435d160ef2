"""Page sessions in the database, on SQLite and PostgreSQL: only the id's hash is stored, and a
session ends at sign-out, when its 8 hours pass, and when its key is revoked."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from serving.records import PageSession
from serving.repository import (
    SESSIONS_KEPT,
    create_api_key,
    end_page_session,
    hash_key,
    open_page_session,
    revoke_api_key,
    signed_in_key,
)

pytest_plugins = ["database_fixtures"]

WORKING_DAY = dt.timedelta(hours=8)


def test_an_open_session_names_its_key_and_stores_only_the_ids_hash(session: Session) -> None:
    key, row = create_api_key(session, "reviewer", "desk")
    session_id = open_page_session(session, row, WORKING_DAY)
    signed = signed_in_key(session, session_id)
    assert (signed.name, signed.role) == ("desk", "reviewer") and len(signed.csrf_token) >= 40
    stored = session.scalars(select(PageSession)).one()
    assert stored.session_hash == hash_key(session_id) != session_id
    assert stored.key_id == row.id and stored.ended_at is None
    assert stored.expires_at - stored.created_at == WORKING_DAY
    assert session_id not in {stored.csrf_token, hash_key(key), key}
    assert signed_in_key(session, hash_key(session_id)) is None  # the stored hash opens nothing


def test_two_sign_ins_get_different_sessions_and_tokens(session: Session) -> None:
    _, row = create_api_key(session, "reviewer", "desk")
    first, second = (open_page_session(session, row, WORKING_DAY) for _ in range(2))
    assert first != second
    assert signed_in_key(session, first).csrf_token != signed_in_key(session, second).csrf_token


def test_sign_out_ends_that_session_only(session: Session) -> None:
    _, row = create_api_key(session, "reviewer", "desk")
    leaving, staying = (open_page_session(session, row, WORKING_DAY) for _ in range(2))
    end_page_session(session, leaving)
    end_page_session(session, leaving)  # twice: nothing more happens
    assert signed_in_key(session, leaving) is None
    assert signed_in_key(session, staying).name == "desk"


def test_a_session_expires_after_its_lifetime(session: Session) -> None:
    _, row = create_api_key(session, "reviewer", "desk")
    session_id = open_page_session(session, row, WORKING_DAY)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    session.execute(update(PageSession).values(expires_at=past))
    session.commit()
    assert signed_in_key(session, session_id) is None


def test_revoking_a_key_ends_its_sessions_and_no_others(session: Session) -> None:
    _, desk = create_api_key(session, "reviewer", "desk")
    _, lead = create_api_key(session, "admin", "lead")
    desk_session = open_page_session(session, desk, WORKING_DAY)
    lead_session = open_page_session(session, lead, WORKING_DAY)
    revoked = revoke_api_key(session, "desk")
    assert signed_in_key(session, desk_session) is None
    assert signed_in_key(session, lead_session).name == "lead"
    ended = session.scalars(select(PageSession).where(PageSession.key_id == desk.id)).one()
    assert ended.ended_at == revoked.revoked_at


def test_a_revoked_key_loses_a_session_even_if_it_was_not_ended(session: Session) -> None:
    """A key revoked by hand in the database, not through ``keys revoke``, still stops."""
    _, row = create_api_key(session, "reviewer", "desk")
    session_id = open_page_session(session, row, WORKING_DAY)
    row.revoked_at = dt.datetime.now(dt.UTC)
    session.commit()
    assert signed_in_key(session, session_id) is None


def test_sessions_ended_long_ago_are_deleted_at_a_sign_in(session: Session) -> None:
    _, row = create_api_key(session, "reviewer", "desk")
    old = open_page_session(session, row, WORKING_DAY)
    recent = open_page_session(session, row, WORKING_DAY)
    long_ago = dt.datetime.now(dt.UTC) - SESSIONS_KEPT - dt.timedelta(hours=1)
    session.execute(
        update(PageSession)
        .where(PageSession.session_hash == hash_key(old))
        .values(expires_at=long_ago)
    )
    session.commit()
    open_page_session(session, row, WORKING_DAY)
    hashes = set(session.scalars(select(PageSession.session_hash)))
    assert hash_key(old) not in hashes and hash_key(recent) in hashes
    assert len(hashes) == 2


@pytest.mark.parametrize("forged", ["", "x" * 43, "../../etc"])
def test_an_unknown_session_id_opens_nothing(session: Session, forged: str) -> None:
    assert signed_in_key(session, forged) is None
