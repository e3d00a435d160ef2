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
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.corruption import (
    CLAIM_DEFECTS,
    ENVELOPE_DEFECTS,
    LAYOUT_BREAK,
    LAYOUT_DEFECT,
    FileDefect,
    damage_claim,
)
from ingest.corruption import render as render_segments
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


def _envelope(defect: FileDefect) -> Corruption:
    """An envelope or layout defect of the whole file: no claim is damaged."""

    def corrupt(sample: Sample) -> tuple[list[str], int] | None:
        damaged = defect(sample.segments, sample.separators.element)
        return None if damaged is None else (damaged, 0)

    return corrupt


def _damaged_copy(defect: str) -> Corruption:
    """A copy of the first claim ``defect`` can damage, damaged, added at the end of its
    transaction."""

    def corrupt(sample: Sample) -> tuple[list[str], int] | None:
        element = sample.separators.element
        for start, end in _claim_loops(sample.segments, element):
            copy = damage_claim(sample.segments[start:end], element, defect)
            if copy is not None:
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


CLASSES: dict[str, Corruption] = {
    **{name: _envelope(defect) for name, defect in ENVELOPE_DEFECTS.items()},
    **{name: _damaged_copy(name) for name in CLAIM_DEFECTS},
}


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
    return render_segments(segments, sample.separators.segment, layout)


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
        layout = LAYOUT_BREAK if name == LAYOUT_DEFECT else ""
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
