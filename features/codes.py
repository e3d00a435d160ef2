"""The CARC/RARC code reference: the project's own labels, and official texts the user imports.

The project ships code numbers with its own short plain-language labels
(``features/reference/carc.yaml`` and ``rarc.yaml``). The official X12 descriptions are X12's
intellectual property, so they are never shipped: a user imports the official list from a
``code,description`` CSV into the local data directory, and :class:`CodeReference` shows that
text beside the label once it is there.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.adjustments import GROUP_CODES, GroupCode, is_denial_adjustment, split_adjustment
from features.contract import RARC_PATTERN, ROOT_CAUSES

# Non-denial arithmetic of a paid claim; every other family is a denial root cause.
NON_DENIAL_FAMILIES = ("cost_sharing", "contractual")
FAMILIES = (*ROOT_CAUSES, *NON_DENIAL_FAMILIES)
# RARCs are tried first: a CARC is digits with at most one letter prefix, never M or N.
CARC_CODE_PATTERN = r"[A-LO-Z]?\d{1,3}"
CSV_COLUMNS = ("code", "description")
MAX_LISTED_PROBLEMS = 20


class CodeKind(StrEnum):
    """The two code lists of a remittance."""

    CARC = "carc"
    RARC = "rarc"


def code_kind(code: str) -> CodeKind | None:
    """The kind a code's shape says it is: ``"N54"`` is a RARC, ``"197"`` or ``"A1"`` a CARC."""
    if re.fullmatch(RARC_PATTERN, code):
        return CodeKind.RARC
    if re.fullmatch(CARC_CODE_PATTERN, code):
        return CodeKind.CARC
    return None


# ---------------------------------------------------------------------------- project labels


@dataclass(frozen=True)
class CodeLabel:
    """The project's own label for one code; ``family`` is the usual root cause (CARCs only)."""

    code: str
    kind: CodeKind
    label: str
    family: str | None = None


class ReferenceDataError(ValueError):
    """A shipped label file is malformed; carries every problem found."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys, which plain YAML silently overwrites."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@cache
def load_labels(kind: CodeKind) -> Mapping[str, CodeLabel]:
    """The project's labels for one kind of code, read once from the package data."""
    name = f"{CodeKind(kind)}.yaml"
    text = resources.files("features.reference").joinpath(name).read_text(encoding="utf-8")
    return parse_labels(text, CodeKind(kind), source=name)


def parse_labels(text: str, kind: CodeKind, source: str) -> Mapping[str, CodeLabel]:
    """Parse and check a label file: ``code: label`` for RARCs, ``code: {label, family}`` for
    CARCs. Raises :class:`ReferenceDataError` listing every defect."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ReferenceDataError(source, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ReferenceDataError(source, ["must be a mapping of code to label"])
    labels: dict[str, CodeLabel] = {}
    problems: list[str] = []
    for code, value in data.items():
        label, entry_problems = _parse_label_entry(code, value, kind)
        problems.extend(f"code {code!r}: {problem}" for problem in entry_problems)
        if label is not None:
            labels[label.code] = label
    if problems:
        raise ReferenceDataError(source, problems)
    return MappingProxyType(labels)


class _CarcEntry(BaseModel):
    """One CARC of ``carc.yaml``: the project's label and the code's usual root cause."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    label: str = Field(min_length=1)
    family: Literal[FAMILIES]  # type: ignore[valid-type]


class _RarcEntry(BaseModel):
    """One RARC of ``rarc.yaml``, given as ``code: label``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    label: str = Field(min_length=1)


_ENTRIES: dict[CodeKind, type[_CarcEntry | _RarcEntry]] = {
    CodeKind.CARC: _CarcEntry,
    CodeKind.RARC: _RarcEntry,
}


def _parse_label_entry(
    code: object, value: object, kind: CodeKind
) -> tuple[CodeLabel | None, list[str]]:
    if not isinstance(code, str) or code_kind(code) is not kind:
        return None, [f'is not a {kind.upper()} code; quote numeric codes, e.g. "16"']
    try:
        entry = _ENTRIES[kind].model_validate(
            {"label": value} if kind is CodeKind.RARC else value, strict=True
        )
    except ValidationError as exc:
        return None, list(dict.fromkeys(_entry_problem(error, kind) for error in exc.errors()))
    return CodeLabel(code, kind, entry.label, getattr(entry, "family", None)), []


def _entry_problem(error: Any, kind: CodeKind) -> str:
    """One field's defect in the file's words."""
    field = error["loc"][0] if error["loc"] else None
    if error["type"] in ("missing", "extra_forbidden", "model_type"):
        fields = "label, family" if kind is CodeKind.CARC else "label"
        return f"must give exactly {fields}"
    if field == "family":
        return f"family {error.get('input')!r} must be one of {', '.join(FAMILIES)}"
    return "label must be non-empty text"


# ---------------------------------------------------------------------------- official lists


@dataclass(frozen=True)
class CodeListProblem:
    """One defect of an official code list. ``row`` is the 1-based data row (the header is not
    counted) and ``line`` the file line; both ``None`` when the whole file is at fault."""

    message: str
    row: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.row is None:
            return self.message
        return f"row {self.row} (line {self.line}): {self.message}"


class CodeListError(ValueError):
    """An official code list was rejected; nothing was written."""

    def __init__(self, path: Path, problems: Sequence[CodeListProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        listed = [f"  {problem}" for problem in self.problems[:MAX_LISTED_PROBLEMS]]
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            listed.append(f"  ... and {len(self.problems) - MAX_LISTED_PROBLEMS} more")
        header = f"{path}: not a usable code list:"
        super().__init__("\n".join([header, *listed]))


@dataclass(frozen=True)
class _Row:
    row: int
    line: int
    code: str
    description: str


def read_code_list(
    path: Path, kind: CodeKind | str | None = None
) -> tuple[CodeKind, dict[str, str]]:
    """Read and check a ``code,description`` CSV; the kind is detected from the codes unless
    given. Returns the kind and the descriptions by code, in file order; raises
    :class:`CodeListError` naming every bad row."""
    path = Path(path)
    rows = _read_rows(path)
    problems = [*_row_problems(rows), *_duplicate_problems(rows)]
    list_kind = CodeKind(kind) if kind is not None else _detect_kind(rows)
    if list_kind is None:
        problems.append(
            CodeListProblem("cannot tell CARCs from RARCs; give the kind (--kind carc or rarc)")
        )
    else:
        problems.extend(_wrong_kind_problems(rows, list_kind, detected=kind is None))
    if problems or list_kind is None:
        raise CodeListError(path, sorted(problems, key=lambda p: p.row or 0))
    return list_kind, {row.code: row.description for row in rows}


def _read_rows(path: Path) -> list[_Row]:
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    columns = [name.strip().lower() for name in header or []]
    if not set(CSV_COLUMNS) <= set(columns):
        found = f"found {','.join(header)!r}" if header else "the file is empty"
        message = f"missing header: the first line must name the columns code,description; {found}"
        raise CodeListError(path, [CodeListProblem(message)])
    code_at, description_at = (columns.index(name) for name in CSV_COLUMNS)
    rows, line = [], reader.line_num
    for values in reader:
        first_line, line = line + 1, reader.line_num
        if not any(value.strip() for value in values):
            continue  # blank lines carry nothing
        code, description = (_field(values, at) for at in (code_at, description_at))
        rows.append(_Row(len(rows) + 1, first_line, code.upper(), description))
    if not rows:
        raise CodeListError(path, [CodeListProblem("no codes: the file has only a header")])
    return rows


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # spreadsheets often add a BOM
    except UnicodeDecodeError as exc:
        problem = CodeListProblem(f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        raise CodeListError(path, [problem]) from exc
    except OSError as exc:
        raise CodeListError(path, [CodeListProblem(f"cannot be read: {exc.strerror}")]) from exc


def _field(values: list[str], at: int) -> str:
    return values[at].strip() if at < len(values) else ""


def _row_problems(rows: Iterable[_Row]) -> list[CodeListProblem]:
    problems = []
    for row in rows:
        if not row.code:
            problems.append(CodeListProblem("blank code", row.row, row.line))
        elif code_kind(row.code) is None:
            message = f"{row.code!r} is not a CARC (e.g. 16, A1) or RARC (e.g. N54, MA04) code"
            problems.append(CodeListProblem(message, row.row, row.line))
        if not row.description:
            message = f"code {row.code or '(blank)'!r} has an empty description"
            problems.append(CodeListProblem(message, row.row, row.line))
    return problems


def _duplicate_problems(rows: Iterable[_Row]) -> list[CodeListProblem]:
    first_row: dict[str, int] = {}
    problems = []
    for row in rows:
        if row.code and row.code in first_row:
            message = f"duplicate code {row.code!r}, first on row {first_row[row.code]}"
            problems.append(CodeListProblem(message, row.row, row.line))
        first_row.setdefault(row.code, row.row)
    return problems


def _detect_kind(rows: Iterable[_Row]) -> CodeKind | None:
    """The kind most codes have; ``None`` on a tie, so a half-and-half file is not guessed."""
    counts = Counter(kind for row in rows if (kind := code_kind(row.code)) is not None)
    ranked = counts.most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def _wrong_kind_problems(
    rows: Sequence[_Row], kind: CodeKind, *, detected: bool
) -> list[CodeListProblem]:
    how = " (detected from most of its codes)" if detected else ""
    problems = []
    majority = _detect_kind(rows)
    if not detected and majority is not None and majority is not kind:
        message = f"most codes are {majority.upper()}s, but the list was given as {kind.upper()}"
        problems.append(CodeListProblem(message))
    for row in rows:
        row_kind = code_kind(row.code)
        if row_kind is not None and row_kind is not kind:
            message = (
                f"{row.code!r} is a {row_kind.upper()}, but this is a {kind.upper()} list{how}"
            )
            problems.append(CodeListProblem(message, row.row, row.line))
    return problems


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote, and how well the official list covers the project's labels."""

    kind: CodeKind
    path: Path
    count: int
    labelled: int
    covered: int
    missing_labelled: tuple[str, ...]


def import_code_list(
    path: Path, codes_dir: Path, kind: CodeKind | str | None = None
) -> ImportSummary:
    """Check an official ``code,description`` list and store it as ``codes_dir/<kind>.csv``.

    A bad file raises :class:`CodeListError` and writes nothing; a good one replaces any
    earlier import of the same kind in one atomic step.
    """
    list_kind, descriptions = read_code_list(Path(path), kind)
    target = Path(codes_dir) / f"{list_kind}.csv"
    _write_atomically(target, descriptions)
    labelled = load_labels(list_kind)
    missing = tuple(code for code in labelled if code not in descriptions)
    return ImportSummary(
        kind=list_kind,
        path=target,
        count=len(descriptions),
        labelled=len(labelled),
        covered=len(labelled) - len(missing),
        missing_labelled=missing,
    )


def _write_atomically(target: Path, descriptions: Mapping[str, str]) -> None:
    """Write to a temporary file beside the target, then rename: readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(descriptions.items())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------- look-up


@dataclass(frozen=True)
class CodeDescription:
    """Everything known about one code as asked for, e.g. ``"CO-197"``, ``"197"`` or ``"N54"``.

    ``is_denial`` is ``None`` when it cannot be told: a bare CARC (it depends on the group
    code) or a remark code (remarks are not adjustments).
    """

    query: str
    code: str
    kind: CodeKind | None
    label: CodeLabel | None = None
    group: GroupCode | None = None
    is_denial: bool | None = None
    official: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        """The code has a project label or an imported official description."""
        return self.label is not None or self.official is not None


class CodeReference:
    """Looks codes up in the project's labels and in the official lists imported into
    ``codes_dir`` (see :func:`import_code_list`)."""

    def __init__(self, codes_dir: Path) -> None:
        self.codes_dir = Path(codes_dir)
        self._official: dict[CodeKind, dict[str, str]] = {}

    def official_descriptions(self, kind: CodeKind) -> dict[str, str]:
        """The imported official list of one kind; empty when none was imported."""
        if kind not in self._official:
            path = self.codes_dir / f"{kind}.csv"
            self._official[kind] = read_code_list(path, kind)[1] if path.exists() else {}
        return self._official[kind]

    def describe(self, query: str) -> CodeDescription:
        """Describe ``"CO-197"``, ``"197"`` or ``"N54"``; an unknown or malformed code gives a
        description with ``known`` false and a note saying why, never an exception."""
        group_text, code = _split_query(query)
        kind = code_kind(code)
        if kind is None:
            note = f"{code!r} is not a CARC (e.g. 197, A1) or RARC (e.g. N54, MA04) code"
            return CodeDescription(query, code, None, notes=(note,))
        group, notes = _group_of(group_text, kind)
        label = load_labels(kind).get(code)
        official = self.official_descriptions(kind).get(code)
        if label is None and official is None:
            notes.append(self._unknown_note(code, kind))
        is_denial = is_denial_adjustment(group.code, code) if group is not None else None
        return CodeDescription(query, code, kind, label, group, is_denial, official, tuple(notes))

    def _unknown_note(self, code: str, kind: CodeKind) -> str:
        if self.official_descriptions(kind):
            return f"{kind.upper()} {code} is in neither the project's labels nor the official list"
        return (
            f"no project label for {kind.upper()} {code}; import the official list to see its text"
        )


def _split_query(query: str) -> tuple[str | None, str]:
    text = query.strip().upper()
    if "-" not in text:
        return None, text
    group, code = split_adjustment(text)
    return group.strip(), code.strip()


def _group_of(group_text: str | None, kind: CodeKind) -> tuple[GroupCode | None, list[str]]:
    """The group code of an adjustment, or why it is ignored."""
    if group_text is None:
        return None, []
    if kind is CodeKind.RARC:
        return None, [f"group code {group_text!r} ignored: remark codes are not adjustments"]
    if group_text not in GROUP_CODES:
        known = ", ".join(GROUP_CODES)
        return None, [f"unknown group code {group_text!r}; expected one of {known}"]
    return GROUP_CODES[group_text], []
