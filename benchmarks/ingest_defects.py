"""Corruption benchmark: does 835 ingestion keep every good claim when a file is damaged?

Reads the public sample remittances (``../shared/samples/835``, at run time; nothing is
copied), then, for each defect class, damages every file the class applies to and reads it
again. A claim the corruption did not touch is *good*; the table gives, per class, how many
good claims were read back and how many of their denials were found, against the
undamaged files, plus how many damaged claims were quarantined (not read as if whole).

Envelope classes damage the envelope only. Claim classes add a damaged copy of one claim (the
first the class can damage) at the end of its transaction, so that every claim of the file,
the denied ones included, stays good and keeps its position (and so its denial ids).

    .venv/bin/python benchmarks/ingest_defects.py
    .venv/bin/python benchmarks/ingest_defects.py --samples path/to/835s
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from features.contract import CARC_PATTERN
from ingest.denials import denial_rows
from ingest.remit835 import FindingLog, Quarantined, RemittanceParser
from ingest.x12 import SegmentReader, Separators

DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "835"


@dataclass
class Sample:
    """One sample as segments, with what its clean reading gives."""

    name: str
    segments: list[str]
    separators: Separators
    claim_keys: list[tuple[str, int]] = field(default_factory=list)  # (ST02, ordinal)
    denials: dict[tuple[str, int], set[str]] = field(default_factory=dict)


# A corruption returns the damaged segments and how many damaged claims they hold, or None
# when it does not apply to the sample.
Corruption = Callable[[Sample], "tuple[list[str], int] | None"]
_LOOP_ENDS = ("CLP", "LX", "PLB", "SE")
_CARC = re.compile(CARC_PATTERN)


def _replace_element(segment: str, element: str, position: int, value: str | None) -> str:
    parts = segment.split(element)
    if position >= len(parts):
        return segment
    if value is None:
        del parts[position]
    else:
        parts[position] = value
    return element.join(parts)


def _envelope(segment_id: str, position: int, change: Callable[[str], str]) -> Corruption:
    """Change one element of every ``segment_id`` segment."""

    def corrupt(sample: Sample) -> tuple[list[str], int] | None:
        element = sample.separators.element
        prefix = segment_id + element
        if not any(segment.startswith(prefix) for segment in sample.segments):
            return None
        damaged = [
            _replace_element(s, element, position, change(s.split(element)[position]))
            if s.startswith(prefix)
            else s
            for s in sample.segments
        ]
        return damaged, 0

    return corrupt


def _text_after_last_segment(sample: Sample) -> tuple[list[str], int]:
    return [*sample.segments, "1" + sample.separators.element + "000000001"], 0


def _missing_iea(sample: Sample) -> tuple[list[str], int] | None:
    if not sample.segments[-1].startswith("IEA"):
        return None
    return sample.segments[:-1], 0


def _stray_fragment_in_header(sample: Sample) -> tuple[list[str], int] | None:
    at = next((i for i, s in enumerate(sample.segments) if s.startswith("BPR")), None)
    if at is None:
        return None
    return [*sample.segments[: at + 1], " 0.00", *sample.segments[at + 1 :]], 0


def _damaged_copy(segment_id: str, change: Callable[[str, str], str | None]) -> Corruption:
    """A copy of the first claim holding a ``segment_id`` segment that ``change`` can rewrite
    (it returns ``None`` when it cannot), rewritten, added at the end of its transaction."""

    def corrupt(sample: Sample) -> tuple[list[str], int] | None:
        element = sample.separators.element
        for start, end in _claim_loops(sample.segments, element):
            loop = sample.segments[start:end]
            for offset, segment in enumerate(loop):
                changed = change(segment, element) if segment.startswith(segment_id) else None
                if changed is not None:
                    copy = [*loop[:offset], changed, *loop[offset + 1 :]]
                    at = _transaction_end(sample.segments, end, element)
                    return [*sample.segments[:at], *copy, *sample.segments[at:]], 1
        return None

    return corrupt


def _claim_loops(segments: list[str], element: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each claim loop: its CLP up to the next CLP, LX, PLB or SE."""
    starts = [i for i, segment in enumerate(segments) if segment.startswith("CLP" + element)]
    loops = []
    for start in starts:
        end = start + 1
        while end < len(segments) and segments[end].split(element, 1)[0] not in _LOOP_ENDS:
            end += 1
        loops.append((start, end))
    return loops


def _transaction_end(segments: list[str], index: int, element: str) -> int:
    """Where the transaction holding ``index`` ends its claims: its first PLB or its SE."""
    while not segments[index].startswith(("PLB" + element, "SE" + element)):
        index += 1
    return index


def _cas_amount(segment: str, element: str) -> str | None:
    """A CAS whose group and code fit the contract gets a malformed amount (masked sample
    codes are left alone: their adjustments are findings, not defects)."""
    elements = segment.split(element)
    if len(elements) < 4 or not _CARC.fullmatch(f"{elements[1]}-{elements[2]}"):
        return None
    return _replace_element(segment, element, 3, "12O.00")


def _moa_after_line(segment: str, element: str) -> str | None:
    """Loop out of order: a claim-level MOA after the claim's first service line."""
    return f"{segment}{SEGMENT_BREAK}MOA{element}{element}{element}MA130"


CLASSES: dict[str, Corruption] = {
    "SE01 count wrong": _envelope("SE", 1, lambda count: str(int(count or 0) + 7)),
    "GE01 count wrong": _envelope("GE", 1, lambda count: str(int(count or 0) + 1)),
    "IEA01 count wrong": _envelope("IEA", 1, lambda count: str(int(count or 0) + 1)),
    "IEA02 trimmed (differs from ISA13)": _envelope("IEA", 2, lambda n: n.lstrip("0") or "1"),
    "SE02 differs from ST02": _envelope("SE", 2, lambda number: number + "9"),
    "text after the last segment": _text_after_last_segment,
    "missing IEA at end of file": _missing_iea,
    "stray fragment between segments": _stray_fragment_in_header,
    "line breaks and indentation between segments": lambda sample: (sample.segments, 0),
    "claim: CLP03 missing": _damaged_copy("CLP", lambda s, e: _replace_element(s, e, 3, "")),
    "claim: CLP04 holds an id": _damaged_copy(
        "CLP", lambda s, e: _replace_element(s, e, 4, "1EG4TE5MK72")
    ),
    "claim: CAS amount malformed": _damaged_copy("CAS", _cas_amount),
    "claim: SVC01 missing": _damaged_copy("SVC", lambda s, e: _replace_element(s, e, 1, "")),
    "claim: SVC02 malformed": _damaged_copy("SVC", lambda s, e: _replace_element(s, e, 2, "1.2.3")),
    "claim: loop out of order (MOA after a line)": _damaged_copy("SVC", _moa_after_line),
}
_LAYOUT_CLASS = "line breaks and indentation between segments"
SEGMENT_BREAK = "\x00"  # splits one rewritten segment into two when the file is rendered


@dataclass
class Tally:
    """What one defect class cost, summed over the files it applies to."""

    files: int = 0
    good_claims: int = 0
    recovered: int = 0
    good_denials: int = 0
    denials_found: int = 0
    damaged_claims: int = 0
    quarantined: int = 0
    findings: int = 0


def load_sample(path: Path) -> Sample:
    reader = SegmentReader(path)
    segments = [segment for batch in reader.batches() for segment in batch]
    assert reader.separators is not None
    sample = Sample(path.name, segments, reader.separators)
    claims, _, _ = _read(sample, render(sample, segments), Path(tempfile.mkdtemp()) / path.name)
    sample.claim_keys = list(claims)
    sample.denials = claims
    return sample


def render(sample: Sample, segments: list[str], layout: str = "") -> str:
    """Segments back to text; ``layout`` goes after each terminator (line breaks, indents)."""
    terminator = sample.separators.segment
    text = "".join(segment + terminator + layout for segment in segments)
    return text.replace(SEGMENT_BREAK, terminator + layout)


def _read(
    sample: Sample, text: str, path: Path
) -> tuple[dict[tuple[str, int], set[str]], list[Quarantined], int]:
    """Claims read (key -> their denial ids), quarantined claims and the finding count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    quarantined: list[Quarantined] = []
    parser = RemittanceParser(path, on_quarantine=quarantined.append)
    scratch = FindingLog(path)
    claims = {
        (claim.remittance.transaction_control, claim.ordinal): {
            str(row["denial_id"]) for row in denial_rows(claim, scratch)
        }
        for claim in parser.claims()
    }
    return claims, quarantined, len(parser.findings.items) + parser.findings.suppressed


def run_class(name: str, samples: list[Sample], folder: Path) -> Tally:
    tally = Tally()
    for sample in samples:
        corrupted = CLASSES[name](sample)
        if corrupted is None:
            continue
        segments, damaged = corrupted
        layout = "\r\n  " if name == _LAYOUT_CLASS else ""
        text = render(sample, segments, layout)
        read, quarantined, findings = _read(sample, text, folder / name[:12] / sample.name)
        good = sample.claim_keys
        tally.files += 1
        tally.good_claims += len(good)
        tally.recovered += sum(key in read for key in good)
        tally.good_denials += sum(len(sample.denials[key]) for key in good)
        tally.denials_found += sum(len(sample.denials[key] & read.get(key, set())) for key in good)
        tally.damaged_claims += damaged
        tally.quarantined += len(quarantined)
        tally.findings += findings
    return tally


def table(results: dict[str, Tally]) -> str:
    lines = [
        "| defect class | files | good claims recovered | denials found | damaged claims "
        "quarantined | findings |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, t in results.items():
        lines.append(
            f"| {name} | {t.files} | {t.recovered} / {t.good_claims} | "
            f"{t.denials_found} / {t.good_denials} | {t.quarantined} / {t.damaged_claims} | "
            f"{t.findings} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    arguments = parser.parse_args()
    paths = sorted(p for p in arguments.samples.iterdir() if p.is_file() and p.suffix != ".tsv")
    samples = [load_sample(path) for path in paths]
    with tempfile.TemporaryDirectory(prefix="ingest-defects-") as folder:
        results = {name: run_class(name, samples, Path(folder)) for name in CLASSES}
    print(f"{len(samples)} sample files from {arguments.samples}\n")
    print(table(results))
    lost = sum(t.good_claims - t.recovered for t in results.values())
    missed = sum(t.good_denials - t.denials_found for t in results.values())
    print(f"\ngood claims lost: {lost}; denials of good claims missed: {missed}")
    raise SystemExit(1 if lost or missed else 0)


if __name__ == "__main__":
    main()
