"""Properties: no input makes the parser raise anything but RemittanceError, and any
well-formed remittance gives contract-valid rows, the same with or without screening."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from remit_fixtures import (
    denied_claim,
    header,
    paid_claim,
    partially_paid_claim,
    reversal_and_correction,
    x12,
)

from features.contract import validate
from ingest.denials import could_be_denial, denial_rows
from ingest.remit835 import Quarantined, RemittanceError, RemittanceParser

PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
VALID = x12(
    [*header(), *denied_claim(), *partially_paid_claim(), *paid_claim()],
    [*header(trace="T2"), *reversal_and_correction()],
    newline="\r\n",
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property") / "input.835"


def _ingest_rows(path: Path, chunk_size: int, screened: bool) -> list[dict[str, object]]:
    """What ingest does with a file, short of writing it."""
    parser = RemittanceParser(path, chunk_size=chunk_size, tolerate_counts=not screened)
    screen = could_be_denial if screened else None
    return [row for claim in parser.claims(screen) for row in denial_rows(claim, parser.findings)]


def _only_remittance_errors(path: Path, data: bytes, chunk_size: int) -> None:
    path.write_bytes(data)
    for screened in (True, False):
        try:
            _ingest_rows(path, chunk_size, screened)
        except RemittanceError as error:
            assert error.file == path and error.message


@PROPERTY
@given(data=st.binary(max_size=3000), chunk_size=st.sampled_from([1, 5, 64, 1 << 20]))
def test_arbitrary_bytes_raise_only_remittance_errors(
    scratch: Path, data: bytes, chunk_size: int
) -> None:
    _only_remittance_errors(scratch, data, chunk_size)


@PROPERTY
@given(data=st.binary(max_size=400), chunk_size=st.sampled_from([3, 64, 1 << 20]))
def test_anything_after_an_isa_header_raises_only_remittance_errors(
    scratch: Path, data: bytes, chunk_size: int
) -> None:
    _only_remittance_errors(scratch, VALID[:107].encode() + data, chunk_size)


def _segments(text: str) -> list[str]:
    return text.split("~\r\n")[:-1]


_FRAGMENTS = st.sampled_from(
    [
        "",
        "*",
        ":",
        "~",
        "^",
        "-1",
        "1e400",
        "nan",
        "20241399",
        "CLP",
        "SE",
        "ISA",
        "Ω",
        " ",
        "9" * 30,
    ]
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """The valid file with a few segments deleted, duplicated, cut or edited."""
    segments = _segments(VALID)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(segments) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "cut", "edit", "swap"]))
        segment = segments[index]
        if action == "delete" and len(segments) > 1:
            del segments[index]
        elif action == "duplicate":
            segments.insert(index, segment)
        elif action == "cut":
            segments[index] = segment[: draw(st.integers(0, len(segment)))]
        elif action == "swap":
            other = draw(st.integers(0, len(segments) - 1))
            segments[index], segments[other] = segments[other], segment
        else:
            elements = segment.split("*")
            position = draw(st.integers(0, len(elements) - 1))
            elements[position] = draw(_FRAGMENTS | st.text(max_size=12))
            segments[index] = "*".join(elements)
    text = "".join(f"{segment}~\r\n" for segment in segments)
    return text[: draw(st.integers(len(text) // 2, len(text)))].encode()


@PROPERTY
@given(data=mutated(), chunk_size=st.sampled_from([7, 1 << 20]))
def test_damaged_remittances_raise_only_remittance_errors(
    scratch: Path, data: bytes, chunk_size: int
) -> None:
    _only_remittance_errors(scratch, data, chunk_size)


_ADJUSTMENTS = st.sampled_from(
    [
        *("CO*45", "PR*1", "PR*2", "PR*3", "OA*23", "CO*A2", "CR*16"),  # not denials
        *("CO*16", "CO*197", "CO*50", "PR*96", "PI*59", "CO*B7", "OA*18", "CO*29"),  # denials
        "PR*XX",  # masked sample data
    ]
)


@st.composite
def claim_loop(draw: st.DrawFn, number: int) -> list[str]:
    """One claim with random status, lines and adjustments, in TR3 segment order."""
    status = draw(st.sampled_from(["1", "2", "3", "4", "19", "22", "23"]))
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        charge = draw(st.integers(0, 500))
        paid = draw(st.integers(0, charge))
        lines.append(f"SVC*HC:99213*{charge}*{paid}**1")
        lines.append(f"DTM*472*202409{draw(st.integers(1, 28)):02d}")
        for _ in range(draw(st.integers(0, 2))):
            amount = draw(st.integers(-50, 500))
            lines.append(f"CAS*{draw(_ADJUSTMENTS)}*{amount}")
    billed, paid = draw(st.integers(0, 2000)), draw(st.integers(0, 2000))
    filing = draw(st.sampled_from(["12", "MA", "MC", "16"]))
    frequency = draw(st.sampled_from(["1", "7", "8"]))
    claim_cas = (
        [f"CAS*{draw(_ADJUSTMENTS)}*{draw(st.integers(0, 300))}"] if draw(st.booleans()) else []
    )
    return [
        f"CLP*PCN{number}*{status}*{billed}*{paid}*0*{filing}*ICN{number}*11*{frequency}",
        *claim_cas,
        "NM1*QC*1*PATIENT*JANE****MI*W1",
        *(["DTM*232*20240901"] if draw(st.booleans()) else []),
        *lines,
    ]


@st.composite
def remittances(draw: st.DrawFn) -> str:
    transactions = []
    for index in range(draw(st.integers(1, 2))):
        claims = [draw(claim_loop(number)) for number in range(draw(st.integers(1, 6)))]
        body = [*header(trace=f"T{index}"), *(s for claim in claims for s in claim)]
        transactions.append(body)
    return x12(*transactions, newline=draw(st.sampled_from(["", "\n", "\r\n"])))


def _frames(rows: list[dict[str, object]]) -> Iterator[pd.DataFrame]:
    if rows:
        yield pd.DataFrame(rows)


@PROPERTY
@given(text=remittances(), chunk_size=st.sampled_from([13, 1 << 20]))
def test_well_formed_remittances_give_contract_rows_with_or_without_screening(
    scratch: Path, text: str, chunk_size: int
) -> None:
    scratch.write_text(text, newline="")
    screened = _ingest_rows(scratch, chunk_size, screened=True)
    everything = _ingest_rows(scratch, chunk_size, screened=False)
    assert screened == everything
    for frame in _frames(screened):
        result = validate(frame)
        assert result.ok, result.errors
    parser = RemittanceParser(scratch)
    assert sum(1 for _ in parser.claims()) == parser.stats.claims == text.count("CLP*")


def test_amounts_with_control_character_padding_are_read_like_the_check_reads_them(
    scratch: Path,
) -> None:
    """Found by the atheris fuzzer (fuzz/ingest_835.py): a CLP amount padded with a control
    character that str.strip removes but float() does not must not escape as ValueError."""
    padded = VALID.replace("CLP*PCN1001*4*250.00*0*", "CLP*PCN1001*4*\x1d250.00*\x1d0*", 1)
    assert padded != VALID
    scratch.write_bytes(padded.encode())
    for screened in (True, False):
        rows = _ingest_rows(scratch, 64, screened)
        assert any(row["claim_id"] == "PCN1001" for row in rows)


def _claim_keys(path: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(ST02, position) of the claims read, and of the claims quarantined."""
    quarantined: list[Quarantined] = []
    parser = RemittanceParser(path, on_quarantine=quarantined.append)
    read = [(c.remittance.transaction_control, c.ordinal) for c in parser.claims()]
    return read, [(q.remittance.transaction_control, q.ordinal) for q in quarantined]


@PROPERTY
@given(text=remittances(), data=st.data())
def test_a_damaged_claim_costs_that_claim_and_no_other(
    scratch: Path, text: str, data: st.DataObject
) -> None:
    scratch.write_text(text, newline="")
    clean, none = _claim_keys(scratch)
    assert none == []
    claims = [match.start() for match in re.finditer(r"CLP\*", text)]
    damaged = data.draw(st.integers(0, len(claims) - 1))
    start = claims[damaged]
    elements = text[start : text.index("~", start)].split("*")
    elements[data.draw(st.sampled_from([3, 4]))] = data.draw(st.sampled_from(["", "1EG4TE5MK72"]))
    scratch.write_text(text[:start] + "*".join(elements) + text[text.index("~", start) :])
    read, quarantined = _claim_keys(scratch)
    assert quarantined == [clean[damaged]]
    assert read == clean[:damaged] + clean[damaged + 1 :]
