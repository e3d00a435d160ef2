"""The code reference: the shipped labels, importing official lists, and describing codes."""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from denial_triage.commands import codes as codes_command
from denial_triage.settings import get_settings
from features.adjustments import GROUP_CODES
from features.codes import (
    FAMILIES,
    CodeKind,
    CodeListError,
    CodeReference,
    ReferenceDataError,
    code_kind,
    import_code_list,
    load_labels,
    parse_labels,
    read_code_list,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
OFFICIAL_DIR = REPO_ROOT / ".." / "shared" / "reference" / "codes"
MINIMUM_LABELS = {CodeKind.CARC: 90, CodeKind.RARC: 70}
# Labels that copy the official text would ship X12's wording: no six-word run in common,
# and no near-identical short label.
MAX_SHARED_WORD_RUN = 5
MAX_SIMILARITY = 0.85
# Codes every denial team meets daily; each must have a label.
CORE_CODES = {
    CodeKind.CARC: ["1", "2", "3", "16", "18", "29", "45", "50", "96", "97", "197", "253"],
    CodeKind.RARC: ["N54", "M127", "N115", "N30", "MA04", "M51", "MA120", "N290", "N211"],
}

needs_official = pytest.mark.skipif(
    not OFFICIAL_DIR.is_dir(), reason="../shared/reference/codes is not checked out"
)


def official_list(kind: CodeKind) -> dict[str, str]:
    with (OFFICIAL_DIR / f"{kind}.csv").open(encoding="utf-8") as handle:
        return {row["code"]: row["description"] for row in csv.DictReader(handle)}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def longest_shared_word_run(label: str, official: str) -> int:
    a, b = words(label), words(official)
    match = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return match.find_longest_match(0, len(a), 0, len(b)).size


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def codes_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "codes"


@pytest.fixture
def settings_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the process settings at a temporary data directory for CLI tests."""
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


# ---------------------------------------------------------------------------- shipped labels


@pytest.mark.parametrize("kind", list(CodeKind))
def test_label_counts_meet_minimum(kind: CodeKind) -> None:
    assert len(load_labels(kind)) >= MINIMUM_LABELS[kind]


@pytest.mark.parametrize("kind", list(CodeKind))
def test_core_denial_codes_are_labelled(kind: CodeKind) -> None:
    assert set(CORE_CODES[kind]) <= set(load_labels(kind))


@pytest.mark.parametrize("kind", list(CodeKind))
def test_labels_are_short_plain_lines(kind: CodeKind) -> None:
    for entry in load_labels(kind).values():
        assert 3 <= len(entry.label.split()) <= 14, entry
        assert "\n" not in entry.label
        assert code_kind(entry.code) is kind


def test_every_carc_has_a_known_family() -> None:
    families = {entry.family for entry in load_labels(CodeKind.CARC).values()}
    assert families <= set(FAMILIES)
    assert {"cost_sharing", "contractual", "authorization_referral"} <= families


def test_cost_sharing_and_contractual_families_match_non_denial_codes() -> None:
    labels = load_labels(CodeKind.CARC)
    assert labels["1"].family == labels["2"].family == labels["3"].family == "cost_sharing"
    assert labels["45"].family == labels["253"].family == "contractual"
    assert labels["197"].family == "authorization_referral"


@pytest.mark.parametrize("kind", list(CodeKind))
def test_label_files_say_the_wording_is_the_projects_own(kind: CodeKind) -> None:
    text = resources.files("features.reference").joinpath(f"{kind}.yaml").read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    assert "project's own wording" in header
    assert "NOT the X12 code descriptions" in header


@needs_official
@pytest.mark.parametrize("kind", list(CodeKind))
def test_every_labelled_code_is_an_active_official_code(kind: CodeKind) -> None:
    missing = set(load_labels(kind)) - set(official_list(kind))
    assert not missing, f"labelled but absent from the official list: {sorted(missing)}"


@needs_official
@pytest.mark.parametrize("kind", list(CodeKind))
def test_no_label_copies_the_official_text(kind: CodeKind) -> None:
    official = official_list(kind)
    copied = []
    for code, entry in load_labels(kind).items():
        label, text = " ".join(words(entry.label)), " ".join(words(official[code]))
        similarity = difflib.SequenceMatcher(None, label, text).ratio()
        run = longest_shared_word_run(entry.label, official[code])
        if label == text or similarity >= MAX_SIMILARITY or run > MAX_SHARED_WORD_RUN:
            copied.append(f"{code}: {entry.label!r} ~ {official[code]!r}")
    assert not copied, "\n".join(copied)


def test_copy_check_catches_a_copied_label() -> None:
    official = "Claim/service lacks information or has submission/billing error(s)."
    assert longest_shared_word_run("Claim service lacks information or has errors", official) > 5


def test_label_file_with_duplicate_code_is_rejected() -> None:
    text = 'N54: "one wording"\nN54: "another wording"\n'
    with pytest.raises(ReferenceDataError, match="duplicate key 'N54'"):
        parse_labels(text, CodeKind.RARC, source="rarc.yaml")


def test_label_file_with_unknown_family_or_unquoted_number_is_rejected() -> None:
    text = '"16": {label: "Missing data", family: paperwork}\n29: {label: "Late", family: coding}\n'
    with pytest.raises(ReferenceDataError) as caught:
        parse_labels(text, CodeKind.CARC, source="carc.yaml")
    assert len(caught.value.problems) == 2
    assert "family 'paperwork'" in str(caught.value)
    assert "code 29: is not a CARC code; quote numeric codes" in str(caught.value)


def test_label_entry_with_a_misspelt_field_or_blank_label_is_rejected() -> None:
    text = (
        '"16": {label: "Missing data", familly: coding}\n'
        '"29": {label: " ", family: timely_filing}\n'
    )
    with pytest.raises(ReferenceDataError) as caught:
        parse_labels(text, CodeKind.CARC, source="carc.yaml")
    assert caught.value.problems == [
        "code '16': must give exactly label, family",
        "code '29': label must be non-empty text",
    ]


# ---------------------------------------------------------------------------- importing


@needs_official
@pytest.mark.parametrize("kind", list(CodeKind))
def test_importing_the_official_list_covers_every_label(kind: CodeKind, codes_dir: Path) -> None:
    summary = import_code_list(OFFICIAL_DIR / f"{kind}.csv", codes_dir)
    official = official_list(kind)
    assert summary.kind is kind
    assert summary.count == len(official)
    assert summary.path == codes_dir / f"{kind}.csv"
    assert summary.covered == summary.labelled == len(load_labels(kind))
    assert summary.missing_labelled == ()
    assert read_code_list(summary.path, kind) == (kind, official)


@needs_official
def test_describe_returns_official_text_once_imported(codes_dir: Path) -> None:
    reference_before = CodeReference(codes_dir)
    assert reference_before.describe("CO-197").official is None
    for kind in CodeKind:
        import_code_list(OFFICIAL_DIR / f"{kind}.csv", codes_dir, kind)
    reference = CodeReference(codes_dir)
    assert reference.describe("CO-197").official == official_list(CodeKind.CARC)["197"]
    assert reference.describe("N54").official == official_list(CodeKind.RARC)["N54"]
    unlabelled = reference.describe("CO-212")
    assert unlabelled.label is None and unlabelled.known
    assert unlabelled.official == official_list(CodeKind.CARC)["212"]


def test_summary_lists_labelled_codes_the_official_list_lacks(
    codes_dir: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "partial.csv", "code,description\n197,Text A\n16,Text B\n")
    summary = import_code_list(path, codes_dir)
    assert summary.kind is CodeKind.CARC and summary.count == 2
    assert summary.covered == 2
    assert "45" in summary.missing_labelled and "197" not in summary.missing_labelled
    assert len(summary.missing_labelled) == summary.labelled - 2


def test_import_accepts_bom_blank_lines_quoted_fields_and_lowercase(
    codes_dir: Path, tmp_path: Path
) -> None:
    text = '\ufeffCode , Description\r\nn54,"Text, with a comma"\r\n\r\nma04,"Two\nlines"\r\n'
    path = write_csv(tmp_path / "rarc-export.csv", text)
    summary = import_code_list(path, codes_dir)
    assert summary.kind is CodeKind.RARC
    assert read_code_list(summary.path)[1] == {"N54": "Text, with a comma", "MA04": "Two\nlines"}


def test_reimport_replaces_the_earlier_list(codes_dir: Path, tmp_path: Path) -> None:
    import_code_list(write_csv(tmp_path / "a.csv", "code,description\n197,Old\n"), codes_dir)
    import_code_list(write_csv(tmp_path / "b.csv", "code,description\n197,New\n"), codes_dir)
    assert CodeReference(codes_dir).describe("197").official == "New"
    assert sorted(p.name for p in codes_dir.iterdir()) == ["carc.csv"]


BAD_FILES = {
    "missing header": ("197,Text\n16,Text\n", "missing header"),
    "empty file": ("", "missing header: .* the file is empty"),
    "header only": ("code,description\n", "no codes"),
    "blank code": ("code,description\n197,Text\n ,Text\n", r"row 2 \(line 3\): blank code"),
    "duplicate code": (
        "code,description\n197,Text\n16,Text\n197,Again\n",
        r"row 3 \(line 4\): duplicate code '197', first on row 1",
    ),
    "wrong kind": (
        "code,description\n197,Text\n16,Text\nN54,Text\n",
        r"row 3 \(line 4\): 'N54' is a RARC, but this is a CARC list",
    ),
    "not a code": ("code,description\n197,Text\nCO-16,Text\n", r"row 2 .*'CO-16' is not a CARC"),
    "empty description": (
        "code,description\n197,Text\n16,  \n",
        r"row 2 \(line 3\): code '16' has an empty description",
    ),
    "half and half": ("code,description\n197,Text\nN54,Text\n", "cannot tell CARCs from RARCs"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_is_rejected_with_its_defect_and_writes_nothing(
    name: str, codes_dir: Path, tmp_path: Path
) -> None:
    text, expected = BAD_FILES[name]
    path = write_csv(tmp_path / "official.csv", text)
    with pytest.raises(CodeListError, match=expected) as caught:
        import_code_list(path, codes_dir)
    assert str(caught.value).startswith(f"{path}: ")
    assert not codes_dir.exists()


def test_bad_file_leaves_an_earlier_import_untouched(codes_dir: Path, tmp_path: Path) -> None:
    import_code_list(write_csv(tmp_path / "good.csv", "code,description\n197,Kept\n"), codes_dir)
    before = (codes_dir / "carc.csv").read_bytes()
    bad = write_csv(tmp_path / "bad.csv", "code,description\n197,New\n197,Twice\n")
    with pytest.raises(CodeListError):
        import_code_list(bad, codes_dir)
    assert (codes_dir / "carc.csv").read_bytes() == before
    assert [p.name for p in codes_dir.iterdir()] == ["carc.csv"]  # no temporary left behind


def test_every_defect_is_reported_at_once(codes_dir: Path, tmp_path: Path) -> None:
    text = "code,description\n197,Text\n,Text\n16,\n197,Again\n"
    with pytest.raises(CodeListError) as caught:
        import_code_list(write_csv(tmp_path / "bad.csv", text), codes_dir)
    assert [p.row for p in caught.value.problems] == [2, 3, 4]


def test_given_kind_contradicting_the_codes_is_rejected(codes_dir: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rarc.csv", "code,description\nN54,Text\nM127,Text\n")
    with pytest.raises(CodeListError, match="most codes are RARCs, but the list was given as CARC"):
        import_code_list(path, codes_dir, CodeKind.CARC)
    assert not codes_dir.exists()


def test_missing_or_binary_file_is_a_clear_error(codes_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CodeListError, match="cannot be read"):
        import_code_list(tmp_path / "nowhere.csv", codes_dir)
    binary = tmp_path / "list.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00")
    with pytest.raises(CodeListError, match="not UTF-8 text"):
        import_code_list(binary, codes_dir)


# ---------------------------------------------------------------------------- describing


@pytest.mark.parametrize("query", ["CO-45", "PR-1", "PR-2", "PR-3", "CO-253"])
def test_routine_adjustments_are_not_denials(query: str, codes_dir: Path) -> None:
    described = CodeReference(codes_dir).describe(query)
    assert described.is_denial is False
    assert described.label is not None
    assert described.label.family in {"cost_sharing", "contractual"}


def test_missing_authorization_is_a_denial(codes_dir: Path) -> None:
    described = CodeReference(codes_dir).describe("CO-197")
    assert described.is_denial is True
    assert described.code == "197" and described.kind is CodeKind.CARC
    assert described.group == GROUP_CODES["CO"]
    assert described.label == load_labels(CodeKind.CARC)["197"]
    assert described.official is None  # nothing imported


@pytest.mark.parametrize("query", ["CO-197", "197", " co-197 "])
def test_adjustment_and_bare_forms_give_the_same_label(query: str, codes_dir: Path) -> None:
    described = CodeReference(codes_dir).describe(query)
    assert described.label == load_labels(CodeKind.CARC)["197"]


def test_bare_carc_leaves_denial_undecided(codes_dir: Path) -> None:
    described = CodeReference(codes_dir).describe("197")
    assert described.group is None and described.is_denial is None


def test_remark_code_is_described_without_group(codes_dir: Path) -> None:
    described = CodeReference(codes_dir).describe("N54")
    assert described.kind is CodeKind.RARC
    assert described.label == load_labels(CodeKind.RARC)["N54"]
    assert described.is_denial is None and described.group is None


@pytest.mark.parametrize(
    ("query", "note"),
    [
        ("ZZ9", "'ZZ9' is not a CARC"),
        ("", "'' is not a CARC"),
        ("CO-", "'' is not a CARC"),
        ("XX-197", "unknown group code 'XX'"),
        ("CO-N54", "remark codes are not adjustments"),
        ("CO-212", "no project label for CARC 212; import the official list"),
    ],
)
def test_unknown_or_malformed_codes_give_a_note_not_an_error(
    query: str, note: str, codes_dir: Path
) -> None:
    described = CodeReference(codes_dir).describe(query)
    assert any(note in text for text in described.notes), described.notes


def test_code_absent_from_imported_list_says_so(codes_dir: Path, tmp_path: Path) -> None:
    import_code_list(write_csv(tmp_path / "carc.csv", "code,description\n197,Text\n"), codes_dir)
    described = CodeReference(codes_dir).describe("CO-999")
    assert not described.known
    assert described.notes == ("CARC 999 is in neither the project's labels nor the official list",)


# ---------------------------------------------------------------------------- command line


def test_cli_import_prints_summary(settings_data_dir: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", "code,description\n197,Text\n")
    result = CliRunner().invoke(codes_command.app, ["import", str(path), "--kind", "carc"])
    assert result.exit_code == 0, result.output
    assert f"Imported 1 CARC codes into {settings_data_dir / 'codes' / 'carc.csv'}" in result.output
    assert "Labelled CARCs missing from the official list: 1, 2, 3" in result.output


def test_cli_import_of_bad_file_exits_1_with_the_reason(
    settings_data_dir: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "list.csv", "code,description\n197,Text\n197,Again\n")
    result = CliRunner().invoke(codes_command.app, ["import", str(path)])
    assert result.exit_code == 1
    assert "duplicate code '197'" in result.output
    assert "Nothing was imported." in result.output
    assert not (settings_data_dir / "codes").exists()


def test_cli_show_prints_label_group_and_denial(settings_data_dir: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", "code,description\n197,Official wording\n")
    CliRunner().invoke(codes_command.app, ["import", str(path)])
    result = CliRunner().invoke(codes_command.app, ["show", "CO-197", "PR-1", "N54"])
    assert result.exit_code == 0, result.output
    assert load_labels(CodeKind.CARC)["197"].label in result.output
    assert "official: Official wording" in result.output
    assert "CO contractual obligation" in result.output
    assert "denial:   yes" in result.output
    assert "denial:   no" in result.output
    assert load_labels(CodeKind.RARC)["N54"].label in result.output


def test_cli_show_of_malformed_code_exits_1(settings_data_dir: Path) -> None:
    result = CliRunner().invoke(codes_command.app, ["show", "CO-197", "HELLO"])
    assert result.exit_code == 1
    assert "'HELLO' is not a CARC" in result.output
