"""The tokenizer: separators from ISA, real-world layout quirks, bounded chunks, numbering."""

from __future__ import annotations

from pathlib import Path

import pytest
from remit_fixtures import denied_claim, header, write, x12

from ingest import x12 as tokenizer
from ingest.errors import RemittanceError
from ingest.x12 import SegmentReader, Separators, detect_separators


def _segments(path: Path, chunk_size: int = 1 << 20) -> list[tuple[int, list[str]]]:
    return list(SegmentReader(path, chunk_size).segments())


@pytest.mark.parametrize(
    ("element", "component", "terminator", "newline"),
    [
        ("*", ":", "~", "\n"),
        ("|", ">", "\n", ""),  # a line break as the terminator
        ("!", "^", "'", "\r\n"),
        ("\x1d", "\x1f", "\x1c", ""),  # control characters, as some clearinghouses send
    ],
)
def test_separators_come_from_isa(
    tmp_path: Path, element: str, component: str, terminator: str, newline: str
) -> None:
    body = [*header(), *denied_claim()]
    text = x12(body, element=element, component=component, terminator=terminator, newline=newline)
    path = write(tmp_path, "odd.835", text)
    segments = _segments(path)
    found = detect_separators(text, path)
    assert (found.element, found.component, found.segment) == (element, component, terminator)
    assert [elements[0] for _, elements in segments][:4] == ["ISA", "GS", "ST", "BPR"]
    svc = next(elements for _, elements in segments if elements[0] == "SVC")
    assert svc[1] == f"HC{component}99214{component}25"


def test_bom_crlf_and_wrapped_lines_read_like_a_clean_file(tmp_path: Path) -> None:
    clean = x12([*header(), *denied_claim()], newline="")
    flat = clean.replace("\n", "")
    wrapped = "\r\n".join(flat[i : i + 80] for i in range(0, len(flat), 80))
    plain = write(tmp_path, "plain.835", clean)
    messy = write(tmp_path, "messy.835", "\ufeff" + wrapped + "\r\n")
    assert _segments(messy) == _segments(plain)


def test_chunk_boundaries_do_not_change_segments(tmp_path: Path) -> None:
    text = x12([*header(), *denied_claim()], newline="\r\n").replace("\r\nN", "\r\n  N")
    path = write(tmp_path, "r.835", "\ufeff" + text)
    whole = _segments(path)
    assert whole == _segments(write(tmp_path, "plain.835", x12([*header(), *denied_claim()])))
    for chunk_size in (1, 7, 64, 106, 107):
        assert _segments(path, chunk_size) == whole


def test_segments_are_numbered_from_isa(tmp_path: Path) -> None:
    path = write(tmp_path, "r.835", x12([*header(), *denied_claim()]))
    numbers = [number for number, _ in _segments(path)]
    assert numbers == list(range(1, len(numbers) + 1))


def test_each_interchange_brings_its_own_separators(tmp_path: Path) -> None:
    first = x12([*header(), *denied_claim()])
    second = x12([*header(), *denied_claim()], element="|", component=">", control=2)
    path = write(tmp_path, "two.835", "\ufeff" + first + "\ufeff" + second)  # concatenated files
    ids = [elements[0] for _, elements in _segments(path)]
    assert ids.count("ISA") == ids.count("SVC") == 2


def test_a_bare_transaction_takes_separators_from_st(tmp_path: Path) -> None:
    text = x12([*header(), *denied_claim()])
    bare = text[text.index("ST*835") : text.index("GE*")]
    path = write(tmp_path, "bare.835", bare)
    reader = SegmentReader(path)
    ids = [elements[0] for _, elements in reader.segments()]
    assert ids[0] == "ST" and ids[-1] == "SE"
    assert reader.separators == Separators("*", None, "~")


def test_blanks_before_a_segment_are_dropped(tmp_path: Path) -> None:
    text = x12([*header(), *denied_claim()]).replace("~\n", "~\n   ")
    ids = [elements[0] for _, elements in _segments(write(tmp_path, "r.835", text))]
    assert "SVC" in ids and all(not name.startswith(" ") for name in ids)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("Dear provider, please find your remittance attached.", "not an X12 file"),
        ("ISA*00*", "fewer than 16 elements"),
        ("ISA*00*          *00*          *ZZ*A*ZZ*B*241015*0930*^*00501*1*0*P**~", "distinct"),
    ],
)
def test_unreadable_starts_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, "bad.835", content)
    with pytest.raises(RemittanceError, match=message) as caught:
        _segments(path)
    assert caught.value.file == path


def test_utf16_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "utf16.835", "\ufeff" + x12(header()), encoding="utf-16")
    with pytest.raises(RemittanceError, match="UTF-16"):
        _segments(path)


def test_a_missing_terminator_stops_instead_of_buffering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokenizer, "MAX_SEGMENT_CHARS", 200)
    text = x12(header()) + "NM1*QC" + "*X" * 500
    with pytest.raises(RemittanceError, match="no segment terminator"):
        _segments(write(tmp_path, "r.835", text), chunk_size=64)


def test_a_missing_file_is_a_remittance_error(tmp_path: Path) -> None:
    with pytest.raises(RemittanceError, match="cannot be read"):
        _segments(tmp_path / "absent.835")


def test_an_unpadded_isa_and_a_missing_last_terminator_are_tolerated(tmp_path: Path) -> None:
    text = x12([*header(), *denied_claim()]).rstrip("~\n")
    unpadded = text.replace("*PAYERSENDER    *", "*PAYERSENDER*", 1)
    segments = _segments(write(tmp_path, "r.835", unpadded))
    assert segments[0][1][6] == "PAYERSENDER" and segments[-1][1][0] == "IEA"


def test_an_interchange_changing_the_terminator_must_be_split(tmp_path: Path) -> None:
    first = x12([*header(), *denied_claim()])
    second = x12([*header(), *denied_claim()], terminator="'", control=2)
    with pytest.raises(RemittanceError, match="another segment terminator") as caught:
        _segments(write(tmp_path, "r.835", first + second))
    assert caught.value.segment_number == first.count("~") + 1
