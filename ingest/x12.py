"""A streaming X12 tokenizer: separators from the ISA header, segments in bounded chunks.

Nothing here knows what an 835 means. The file is read in chunks of ``chunk_size`` bytes;
only the current chunk and one unfinished segment are held in memory, so a file of any size
is tokenized in bounded memory.

Separators are never assumed: the element separator is the character after ``ISA``, the
component separator is ISA16 and the segment terminator is the character after ISA16. Real
files arrive with a UTF-8 byte order mark, CR/LF after each segment, lines wrapped at a fixed
width, and several interchanges in one file; line breaks are removed from the stream unless a
line break is itself the segment terminator. A file that starts with ``ST`` (a bare
transaction set, as some vendors and test suites ship) is read too: its element separator and
terminator come from the ST segment and its component separator from the first composite
that shows it.

Segments are numbered from 1 in file order (ISA = 1), as editors and pyx12 count, so every
error can point at one.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ingest.errors import RemittanceError, shown_code, shown_number

DEFAULT_CHUNK_SIZE = 1 << 20
# A segment longer than this means the terminator is not what the header said: stop instead of
# buffering the whole file looking for it.
MAX_SEGMENT_CHARS = 1 << 20
_HEAD_CHARS = 512  # enough for any ISA, even one padded or wrapped
_ISA_ELEMENTS = 16
_LINE_BREAKS = "\r\n"
_BLANKS = " \t"
INDENTED = "layout: segments indented with blanks (removed before reading)"
WRAPPED = "layout: line breaks inside segments, a wrapped file (removed before reading)"
_CONTROL_DIGITS = 9  # ISA13 and GS06 run to nine digits; control numbers never carry PHI


@dataclass(frozen=True, slots=True)
class Separators:
    """The delimiters of one interchange. ``component`` is ``None`` until known (a file without
    an ISA header learns it from the first composite element)."""

    element: str
    component: str | None
    segment: str
    repetition: str | None = None

    @property
    def removed_line_breaks(self) -> str:
        """Line-break characters dropped from the stream: all of them, unless a line break is
        the terminator, in which case only the other one (a CR before an LF terminator)."""
        if self.segment in _LINE_BREAKS:
            return _LINE_BREAKS.replace(self.segment, "")
        return _LINE_BREAKS


def is_delimiter(char: str) -> bool:
    """A character can delimit X12 when it is one printable-or-control non-alphanumeric char."""
    return len(char) == 1 and not char.isalnum() and char != " "


def separators_from_isa(isa: str, segment: str) -> Separators | None:
    """Separators declared by one complete ISA segment (terminator already removed), or
    ``None`` when it is not a well-formed ISA with single-character separators."""
    if len(isa) < 4 or not isa.startswith("ISA") or not is_delimiter(isa[3]):
        return None
    elements = isa.split(isa[3])
    if len(elements) != _ISA_ELEMENTS + 1 or not is_delimiter(elements[16]):
        return None
    component = elements[16]
    version = elements[12].strip()
    # ISA11 became the repetition separator in 5010; in 4010 it is a standards identifier.
    repetition = elements[11] if version >= "00501" and is_delimiter(elements[11]) else None
    if len({isa[3], component, segment}) != 3:
        return None
    return Separators(isa[3], component, segment, repetition)


def detect_separators(head: str, path: Path) -> Separators:
    """Separators of a file from its first characters (BOM and leading blanks removed)."""
    if head.startswith("ISA"):
        return _isa_separators(head, path)
    if head.startswith("ST") and len(head) > 2 and is_delimiter(head[2]):
        return _bare_transaction_separators(head, path)
    if not head:
        raise RemittanceError(path, None, "the file is empty")
    raise RemittanceError(
        path,
        1,
        f"not an X12 file: it starts with {shown_code(head[:3])} where an ISA interchange header "
        "(or a bare ST transaction) is expected",
    )


def _isa_separators(head: str, path: Path) -> Separators:
    element = head[3] if len(head) > 3 else ""
    if not is_delimiter(element):
        raise RemittanceError(path, 1, "ISA: the fourth character must be the element separator")
    positions = _nth_positions(head, element, _ISA_ELEMENTS)
    if positions is None:
        raise RemittanceError(path, 1, "ISA: fewer than 16 elements; the header is truncated")
    if any(char in head[: positions[-1]] for char in _LINE_BREAKS):
        # The header itself was wrapped: read it again with the line breaks taken out.
        unwrapped = head.replace("\r", "").replace("\n", "")
        if unwrapped != head:
            return _isa_separators(unwrapped, path)
    component_at = positions[-1] + 1
    terminator = _terminator_after(head, component_at + 1)
    if component_at >= len(head) or not terminator:
        raise RemittanceError(path, 1, "ISA: the header ends before its segment terminator")
    separators = separators_from_isa(head[: component_at + 1], terminator)
    if separators is None:
        raise RemittanceError(
            path, 1, "ISA: element, component and segment separators must be distinct delimiters"
        )
    return separators


def _nth_positions(text: str, char: str, count: int) -> list[int] | None:
    positions: list[int] = []
    start = 0
    while len(positions) < count:
        found = text.find(char, start)
        if found < 0:
            return None
        positions.append(found)
        start = found + 1
    return positions


def _terminator_after(head: str, index: int) -> str:
    """The segment terminator starting at ``index``. A line break there is the terminator only
    when the next segment follows it; otherwise the header was wrapped just before its real
    terminator."""
    if index >= len(head):
        return ""
    candidate = head[index]
    if candidate not in _LINE_BREAKS:
        return candidate if is_delimiter(candidate) else ""
    rest = head[index:].lstrip(_LINE_BREAKS)
    if rest[:1].isalnum() or not rest:
        return "\n" if "\n" in head[index : index + 2] else "\r"
    return rest[0] if is_delimiter(rest[0]) else ""


def _bare_transaction_separators(head: str, path: Path) -> Separators:
    element = head[2]
    for index in range(3, min(len(head), 64)):
        char = head[index]
        if char != element and not char.isalnum():
            terminator = _terminator_after(head, index)
            if terminator and terminator != element:
                return Separators(element, None, terminator)
            break
    raise RemittanceError(path, 1, "ST: cannot find the segment terminator after the ST segment")


class SegmentReader:
    """Streams the segments of one X12 file in bounded memory.

    ``batches()`` yields lists of segment texts (terminator and line breaks removed) for a
    caller that splits elements itself; ``segments()`` yields numbered, split segments and
    follows separator changes between interchanges.
    """

    def __init__(self, path: Path | str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.path = Path(path)
        self.chunk_size = max(1, chunk_size)
        self.separators: Separators | None = None
        # Layout that was tolerated (blanks or line breaks where X12 has none), for findings.
        self.layout_notes: set[str] = set()

    def batches(self) -> Iterator[list[str]]:
        """Lists of segment texts in file order; empty segments are dropped."""
        try:
            with self.path.open("rb") as stream:
                yield from self._batches(stream)
        except OSError as exc:
            raise RemittanceError(self.path, None, f"cannot be read: {exc.strerror}") from exc

    def segments(self) -> Iterator[tuple[int, list[str]]]:
        """``(segment number, elements)`` pairs; a later ISA may declare new separators."""
        number = 0
        for batch in self.batches():
            assert self.separators is not None  # set before the first batch
            element = self.separators.element
            for text in batch:
                number += 1
                if text.startswith("ISA"):
                    element = self.switch_interchange(text, number).element
                yield number, text.split(element)

    def switch_interchange(self, isa: str, number: int) -> Separators:
        """Take the separators of a later interchange in the same file from its ISA text."""
        assert self.separators is not None
        separators = separators_from_isa(isa, self.separators.segment)
        if separators is None:
            raise RemittanceError(
                self.path,
                number,
                "ISA: malformed, or this interchange uses another segment terminator than the "
                "first one in the file (split the file into one file per interchange)",
            )
        self.separators = separators
        return separators

    def _batches(self, stream: BinaryIO) -> Iterator[list[str]]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        head = self._read_head(stream, decoder)
        self.separators = detect_separators(head, self.path)
        terminator = self.separators.segment
        # A byte order mark can also sit mid-file, where files were concatenated.
        removed = self.separators.removed_line_breaks + "\ufeff"
        pending, previous = "", terminator
        wrapped = _wrapped_line(terminator)
        decoded, at_end = head, False  # the head goes through the same path as every chunk
        while True:
            wrapped = self._note_wrapping(previous + decoded, terminator, wrapped)
            previous = decoded[-1:] or previous
            text = self._unindented(pending, _strip(decoded, removed), terminator)
            parts = text.split(terminator)
            pending = parts.pop()
            if len(pending) > MAX_SEGMENT_CHARS:
                raise RemittanceError(
                    self.path,
                    None,
                    f"no segment terminator {terminator!r} in {MAX_SEGMENT_CHARS:,} characters: "
                    "the file is not X12 or uses another terminator than its header declares",
                )
            if "" in parts:
                parts = [part for part in parts if part]
            if parts:
                yield parts
            if at_end:
                break
            raw = stream.read(self.chunk_size)
            at_end = not raw
            decoded = decoder.decode(raw, final=at_end)
        if pending.strip():
            # Some senders omit the last terminator; whether anything is missing is for the
            # envelope check to decide.
            yield [pending]

    def _note_wrapping(
        self, text: str, terminator: str, wrapped: re.Pattern[str] | None
    ) -> re.Pattern[str] | None:
        """Records a wrapped line once; returns the pattern while there is one to look for."""
        if wrapped is not None and _has_wrapped_line(text, terminator, wrapped):
            self.layout_notes.add(WRAPPED)
            return None
        return wrapped

    def _unindented(self, pending: str, text: str, terminator: str) -> str:
        """``pending + text`` without blanks at the start of segments; records indentation."""
        text = pending + text
        if not pending and text and text[0] in _BLANKS:  # a segment starts here
            self.layout_notes.add(INDENTED)
            text = text.lstrip(_BLANKS)
        unindented = _unindent(text, terminator)
        if len(unindented) != len(text):
            self.layout_notes.add(INDENTED)
        return unindented

    def _read_head(self, stream: BinaryIO, decoder: codecs.IncrementalDecoder) -> str:
        """The first characters of the file, BOM and leading blanks removed."""
        text = ""
        first = True
        while len(text) < _HEAD_CHARS:
            more = stream.read(self.chunk_size)
            if first and more[:2] in (b"\xff\xfe", b"\xfe\xff"):
                raise RemittanceError(
                    self.path, None, "UTF-16 encoded; X12 files must be ASCII or UTF-8"
                )
            first = False
            text += decoder.decode(more, final=not more)
            if not more:
                break
        return text.lstrip("\ufeff \t\r\n\x00")


def _wrapped_line(terminator: str) -> re.Pattern[str] | None:
    """Finds a line break that does not follow a terminator (or another line break): a
    segment wrapped over lines. ``None`` when the terminator is itself a line break."""
    if terminator in _LINE_BREAKS:
        return None
    return re.compile(f"[^{re.escape(terminator)}\r\n][\r\n]")


def _has_wrapped_line(text: str, terminator: str, wrapped: re.Pattern[str]) -> bool:
    """Whether ``text`` holds a line break inside a segment. Counting is fast and rules out
    the usual layouts (none, or line breaks after terminators); the pattern, slow on a whole
    chunk, confirms only what counting cannot."""
    breaks = text.count("\n") + text.count("\r")
    if not breaks:
        return False
    expected = text.count(terminator + "\n") + text.count(terminator + "\r")
    expected += sum(text.count(pair) for pair in ("\r\n", "\n\n", "\r\r", "\n\r"))
    return breaks > expected and wrapped.search(text) is not None


def _unindent(text: str, terminator: str) -> str:
    """Remove blanks at the start of segments (left by wrapping or indenting)."""
    for blank in _BLANKS:
        while terminator + blank in text:
            text = text.replace(terminator + blank, terminator)
    return text


def _strip(text: str, characters: str) -> str:
    for char in characters:
        text = text.replace(char, "")
    return text


@dataclass(slots=True)
class _Open:
    """An open envelope: where it began, its control number, how many children it holds."""

    segment_number: int
    control: str
    children: int = 0


class Envelope:
    """Checks ISA/GS/ST nesting, control numbers and counts as the segments go by.

    An envelope defect never costs a claim, so none of them stops the file: a wrong SE01, GE01
    or IEA01 count, control numbers that differ, a header while the previous envelope is still
    open (it is closed for it), a trailer without its header, a file that ends without its
    trailers: each is handed to ``report`` as a finding and reading goes on. Only a file
    without any transaction is refused, since it holds no remittance at all.
    """

    def __init__(
        self,
        path: Path,
        report: Callable[[int | None, str], None],
        *,
        bare_transactions: bool = False,
    ) -> None:
        self.path = path
        self.report = report
        self.bare_transactions = bare_transactions
        self.interchange: _Open | None = None
        self.group: _Open | None = None
        self.transaction: _Open | None = None
        self.transactions_seen = 0

    def open_interchange(self, number: int, elements: list[str]) -> None:
        if self.interchange is not None:
            self._unclosed(number, "ISA", "interchange", self.interchange, "IEA")
            self.group = self.interchange = None
        self.interchange = _Open(number, _element(elements, 13))

    def open_group(self, number: int, elements: list[str]) -> None:
        if self.interchange is None:
            self.report(number, "envelope: GS outside an interchange (no ISA before it)")
        elif self.group is not None:
            self._unclosed(number, "GS", "functional group", self.group, "GE")
        if self.interchange is not None:
            self.interchange.children += 1
        self.group = _Open(number, _element(elements, 6))

    def open_transaction(self, number: int, elements: list[str]) -> None:
        if self.group is None and not (self.bare_transactions and self.interchange is None):
            self.report(number, "envelope: ST outside a functional group (no GS before it)")
        if self.group is not None:
            self.group.children += 1
        self.transaction = _Open(number, _element(elements, 2))
        self.transactions_seen += 1

    def abandon_transaction(self, number: int, header: str) -> None:
        """A header arrived inside the open transaction: its SE is missing."""
        assert self.transaction is not None
        self._unclosed(number, header, "transaction", self.transaction, "SE")
        self.transaction = None

    def close_transaction(self, number: int, elements: list[str]) -> None:
        opened = self.transaction
        if opened is None:
            self.report(number, "envelope: SE without a matching ST; ignored")
            return
        self._check_control(number, "SE02", _element(elements, 2), opened, "ST02")
        self._check_count(number, "SE01", _element(elements, 1), number - opened.segment_number + 1)
        self.transaction = None

    def close_group(self, number: int, elements: list[str]) -> None:
        opened = self.group
        if opened is None:
            self.report(number, "envelope: GE without a matching GS; ignored")
            return
        self._check_control(number, "GE02", _element(elements, 2), opened, "GS06")
        self._check_count(number, "GE01", _element(elements, 1), opened.children)
        self.group = None

    def close_interchange(self, number: int, elements: list[str]) -> None:
        if self.group is not None:
            self._unclosed(number, "IEA", "functional group", self.group, "GE")
            self.group = None
        opened = self.interchange
        if opened is None:
            self.report(number, "envelope: IEA without a matching ISA; ignored")
            return
        self._check_control(number, "IEA02", _element(elements, 2), opened, "ISA13")
        self._check_count(number, "IEA01", _element(elements, 1), opened.children)
        self.interchange = None

    def finish(self, last_number: int) -> None:
        """The file ended: envelopes still open are findings; no transaction at all is an
        error."""
        if self.transactions_seen == 0:
            raise RemittanceError(self.path, last_number, "no ST transaction in the file")
        for opened, name, trailer in (
            (self.transaction, "transaction", "SE"),
            (self.group, "functional group", "GE"),
            (self.interchange, "interchange", "IEA"),
        ):
            if opened is not None:
                self.report(
                    last_number,
                    f"envelope: the file ends inside the {name} opened at segment "
                    f"{opened.segment_number} (no {trailer}): truncated, or its trailer left off",
                )

    def _unclosed(self, number: int, header: str, name: str, opened: _Open, trailer: str) -> None:
        self.report(
            number,
            f"envelope: {header} before the {name} opened at segment {opened.segment_number} "
            f"was closed by {trailer}; closed here",
        )

    def _check_control(
        self, number: int, name: str, value: str, opened: _Open, header_name: str
    ) -> None:
        if value.strip() != opened.control.strip():
            self.report(
                number,
                f"envelope: {name} control number {shown_number(value, _CONTROL_DIGITS)} "
                f"differs from {header_name} {shown_number(opened.control, _CONTROL_DIGITS)} "
                f"at segment {opened.segment_number}",
            )

    def _check_count(self, number: int, name: str, value: str, actual: int) -> None:
        declared = value.strip()
        if not (declared.isascii() and declared.isdigit()):
            self.report(number, f"envelope: {name} {shown_number(value)} is not a count")
        elif int(declared) != actual:
            self.report(number, f"envelope: {name} says {int(declared)} but there are {actual}")


def _element(elements: list[str], position: int) -> str:
    """Element ``position`` (1-based, as X12 numbers them) or ``""`` when absent."""
    return elements[position] if position < len(elements) else ""
