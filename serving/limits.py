"""Limits checked before work: a request's cost is bounded before it is parsed or validated.

A score request is read as bytes and checked in three steps, each cheap and each before the
next costs anything: the body's size (the middleware, as it streams in), an upper bound on how
many JSON values it can hold (counted at C speed, before parsing), and the length of its
denial list (after parsing, before any denial is validated). Validation then runs in a worker
thread, never on the event loop, and its error list is capped.

Why a bound on values rather than a streaming parser: the memory and time of parsing JSON
grow with the number of values, not bytes (10 MiB of ``{},`` is 3.5 million dicts, about a
gigabyte of Python objects, against 10 MB as text). Every JSON value but the root follows a
``[``, ``{``, ``:`` or ``,``, and every object member has a ``,`` or ``{`` before it, so
``count(",") + count("[") + count("{") + 1`` can only overcount (those characters may also
sit inside strings). Refusing bodies above ``VALUES_PER_DENIAL`` per allowed denial keeps the
worst body the parser ever sees to a few tens of milliseconds, and a real denial, about 30
values and a few codes, never comes near it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from serving.errors import MAX_PROBLEMS_SHOWN, ServiceError, problems
from serving.schemas import DenialIn, ScoreOptions, ScoreRequest

# A denial has 26 contract fields and a few codes: some 30 to 60 JSON values. Eight times that
# leaves room for long code lists and commas inside ids, and bounds the worst parse.
VALUES_PER_DENIAL = 256
MAX_PROBLEMS_PER_DENIAL = 20  # a skipped denial's errors listed (its count says how many)
ENVELOPE_VALUES = 64  # the request's own fields around the denial list


def value_bound(body: bytes) -> int:
    """An upper bound on the number of JSON values ``body`` holds, counted without parsing."""
    return body.count(b",") + body.count(b"[") + body.count(b"{") + 1


def _value_limit(max_denials: int) -> int:
    return max_denials * VALUES_PER_DENIAL + ENVELOPE_VALUES


def _too_many_values(max_denials: int) -> ServiceError:
    return ServiceError(
        413,
        f"the body holds more JSON values than {max_denials:,} denials need "
        f"(at most {VALUES_PER_DENIAL} a denial); send fewer denials per request",
    )


async def read_score_body(chunks: AsyncIterator[bytes], max_denials: int) -> bytes:
    """The body, counted as it arrives: refused (413) as soon as it could hold more values than
    ``max_denials`` denials need, so 10 MiB of ``{},`` is dropped after its first few hundred
    kilobytes instead of being received whole. The bound is a sum over bytes, so counting
    chunk by chunk gives the same figure as counting the whole body."""
    limit, seen, parts = _value_limit(max_denials), 0, []
    async for chunk in chunks:
        seen += value_bound(chunk) - 1
        if seen + 1 > limit:
            raise _too_many_values(max_denials)
        parts.append(chunk)
    return b"".join(parts)


@dataclass(frozen=True)
class ParsedScoreRequest:
    """A score request whose denials passed the schema, where each came from in the body's
    list, and (``on_error: "skip"``) the denials set aside with their field errors."""

    request: ScoreRequest
    positions: list[int]
    rejected: list[dict[str, Any]] = field(default_factory=list)


def parse_score_request(body: bytes, max_denials: int) -> ParsedScoreRequest:
    """The score request in ``body``, refused with 413 or 422 before costly work.

    413 when the body could hold more values than ``max_denials`` denials need, or its denial
    list is longer than ``max_denials``; 422 when it is not JSON, breaks the request schema,
    or (``on_error: "reject"``, the default) one of its denials breaks the denial schema. With
    ``on_error: "skip"``, a broken denial is set aside with its index and field errors instead.
    """
    if value_bound(body) > _value_limit(max_denials):
        raise _too_many_values(max_denials)
    document = _json(body)
    denials = document.get("denials") if isinstance(document, dict) else None
    if isinstance(denials, list) and len(denials) > max_denials:
        raise ServiceError(
            413, f"{len(denials):,} denials in one request; the limit is {max_denials:,}"
        )
    return _validated(document)


def _validated(document: Any) -> ParsedScoreRequest:
    """The request, its denials validated one by one: past the first problems shown, a broken
    denial is only counted, since building the full list of 100,000 problems of 1,000 broken
    denials took seconds and hundreds of megabytes (a skipped denial lists at most
    :data:`MAX_PROBLEMS_PER_DENIAL` of its own, for the same reason)."""
    try:
        options = ScoreOptions.model_validate(document)
    except ValidationError as exc:
        raise ServiceError(422, problems(exc.errors(include_input=False), "body")) from exc
    shown: list[dict[str, Any]] = []
    count = 0
    denials, positions, rejected = [], [], []
    skip = options.on_error == "skip"
    for position, denial in enumerate(options.denials):
        try:
            denials.append(DenialIn.model_validate(denial))
            positions.append(position)
        except ValidationError as exc:
            errors = exc.errors(include_input=False)
            if skip:
                rejected.append(rejected_denial(position, problems(errors), exc.error_count()))
                continue
            count += exc.error_count()
            if len(shown) < MAX_PROBLEMS_SHOWN:
                shown += problems(errors, "body", "denials", position)
    if count:
        raise ServiceError(422, shown[:MAX_PROBLEMS_SHOWN], problem_count=count)
    request = ScoreRequest.model_construct(**{**options.model_dump(), "denials": denials})
    return ParsedScoreRequest(request, positions, rejected)


def rejected_denial(index: int, errors: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """A skipped denial as the answer lists it: its index in the request and its field errors
    (paths within the denial, never the values sent)."""
    return {"index": index, "errors": errors[:MAX_PROBLEMS_PER_DENIAL], "error_count": count}


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # The position, never the text around it: the body may carry PHI.
        raise ServiceError(422, [{"loc": ["body", exc.pos], "msg": "not valid JSON"}]) from exc
