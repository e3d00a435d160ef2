"""API keys: shown once, stored hashed, compared in constant time, refused once revoked."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving import repository
from serving.records import ApiKey, Role
from serving.repository import (
    KeyNameTaken,
    KeyNotFound,
    UnknownRole,
    authenticate,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)

pytest_plugins = ["database_fixtures"]


@pytest.mark.parametrize("role", list(Role))
def test_created_key_authenticates_with_its_role(session: Session, role: Role) -> None:
    key, row = create_api_key(session, role.value, f"{role}-system")
    caller = authenticate(session, key)
    assert caller is not None
    assert (caller.id, caller.name, caller.role) == (row.id, f"{role}-system", role.value)


def test_only_the_hash_is_stored(session: Session) -> None:
    key, row = create_api_key(session, "scorer", "worklist")
    assert key.startswith(f"dt_{row.key_prefix}_")
    stored = session.execute(select(ApiKey.__table__)).one()._asdict()
    assert stored["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert not any(key in str(value) for value in stored.values())
    # The secret is all that follows the prefix: token_urlsafe may itself hold "_".
    secret = key.removeprefix(f"dt_{row.key_prefix}_")
    assert len(secret) >= 32
    assert not any(secret in str(value) for value in stored.values())


def test_two_keys_never_share_a_secret(session: Session) -> None:
    first, _ = create_api_key(session, "scorer", "a")
    second, _ = create_api_key(session, "scorer", "b")
    assert first != second
    assert len(first.split("_", 2)[2]) >= 43  # 32 random bytes, base64


@pytest.mark.parametrize(
    "wrong",
    [
        "",
        "dt_",
        "not-a-key",
        "Bearer something",
        "x" * 10_000,
    ],
)
def test_malformed_keys_are_refused(session: Session, wrong: str) -> None:
    create_api_key(session, "admin", "ops")
    assert authenticate(session, wrong) is None


def test_a_key_with_one_character_changed_is_refused(session: Session) -> None:
    key, _ = create_api_key(session, "admin", "ops")
    last = "A" if key[-1] != "A" else "B"
    assert authenticate(session, key[:-1] + last) is None
    assert authenticate(session, key + "x") is None
    assert authenticate(session, key[:-1]) is None


def test_right_id_with_another_keys_secret_is_refused(session: Session) -> None:
    first, _ = create_api_key(session, "admin", "ops")
    second, _ = create_api_key(session, "scorer", "worklist")
    forged = first[:12] + second[12:]
    assert authenticate(session, forged) is None


def test_hashes_are_compared_in_constant_time(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, row = create_api_key(session, "reviewer", "desk")
    compared: list[tuple[str, str]] = []
    real = repository.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(repository.hmac, "compare_digest", spy)
    assert authenticate(session, key) is not None
    assert compared == [(row.key_hash, row.key_hash)]


def test_revoked_key_is_refused(session: Session) -> None:
    key, _ = create_api_key(session, "scorer", "worklist")
    revoked = revoke_api_key(session, "worklist")
    assert revoked.revoked_at is not None
    assert authenticate(session, key) is None


def test_revoke_by_id_and_twice_keeps_the_first_time(session: Session) -> None:
    _, row = create_api_key(session, "scorer", "worklist")
    first = revoke_api_key(session, str(row.id)).revoked_at
    assert revoke_api_key(session, str(row.id)).revoked_at == first


def test_revoking_an_unknown_key_says_so(session: Session) -> None:
    with pytest.raises(KeyNotFound, match="nobody"):
        revoke_api_key(session, "nobody")


def test_unknown_role_is_refused(session: Session) -> None:
    with pytest.raises(UnknownRole, match="scorer, reviewer, admin"):
        create_api_key(session, "superuser", "x")


def test_active_names_are_unique_and_free_again_after_revoking(session: Session) -> None:
    create_api_key(session, "scorer", "worklist")
    with pytest.raises(KeyNameTaken):
        create_api_key(session, "scorer", "worklist")
    revoke_api_key(session, "worklist")
    replacement, _ = create_api_key(session, "scorer", "worklist")
    assert authenticate(session, replacement) is not None
    assert [k.active for k in list_api_keys(session)] == [False, True]
