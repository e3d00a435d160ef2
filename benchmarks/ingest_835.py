"""Benchmark 835 ingestion: end-to-end MB/s and peak memory, against pyx12's tokenizer.

Generates a synthetic batch of remittances (default 1 GiB in 16 files, written once into
``data/bench-835/``), then, each in a fresh process so that peak RSS is its own:

* ``ingest``: ``ingest.batch.ingest`` over the whole batch, file to contract rows on disk;
* ``tokenize``: ``ingest.x12.SegmentReader.segments`` over the pyx12 sample (tokenizer only);
* ``pyx12``: ``pyx12.x12file.X12Reader`` over the same sample (its tokenizer, no validation).

and prints a markdown table. Speeds are given per wall-clock second and per CPU second: the
second is what one core does, and stays meaningful on a machine shared with other work.
Ratios use CPU time. The pyx12 sample is the first files of the batch up to
``--pyx12-mb`` (pyx12 runs at a few MB/s, so a full GiB would take minutes).

    .venv/bin/python benchmarks/ingest_835.py                 # 1 GiB, the issue's figure
    .venv/bin/python benchmarks/ingest_835.py --size-mb 64    # a quick look

The synthetic mix follows industry figures (domain.md): about 12% of claims carry a denial
(7% whole-claim CLP02 = 4, the rest on single lines), 1% reversal-and-correction pairs, the
rest paid with cost sharing and contractual adjustments; 1-6 service lines per claim, patient
and insured segments present as in real files, CR/LF after segments in half the files.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

MIB = 1 << 20
DEFAULT_DIR = Path("data/bench-835")
PAYERS = (  # name, id, CLP06 filing indicators
    ("MEDICARE JURISDICTION H", "04412", ("MB", "MB", "MA")),
    ("STATE MEDICAID", "77027", ("MC",)),
    ("BLUE PLAN OF SOMEWHERE", "00590", ("BL", "12")),
    ("NATIONAL HEALTH PLAN", "87726", ("CI", "HM", "16")),
)
PROCEDURES = ("99213", "99214", "99203", "93000", "80053", "85025", "71046", "97110", "J1100")
DENIALS = (  # group, CARC, line remark
    ("CO", "16", "M51"),
    ("CO", "197", "N54"),
    ("CO", "50", "N115"),
    ("CO", "97", "M15"),
    ("CO", "29", "N211"),
    ("CO", "18", "N522"),
    ("PR", "96", "N130"),
    ("CO", "27", "N30"),
)


# ---------------------------------------------------------------------------- generation


def _line(rng: random.Random, denied: bool, date: str) -> list[str]:
    charge = rng.randint(40, 900)
    modifier = rng.choice(("", "", "", ":25", ":59", ":GT"))
    procedure = f"HC:{rng.choice(PROCEDURES)}{modifier}"
    if denied:
        group, carc, remark = rng.choice(DENIALS)
        return [
            f"SVC*{procedure}*{charge}*0**1",
            f"DTM*472*{date}",
            f"CAS*{group}*{carc}*{charge}",
            f"REF*6R*{rng.randint(10**8, 10**9)}",
            f"LQ*HE*{remark}",
        ]
    allowed = round(charge * rng.uniform(0.4, 0.8), 2)
    share = round(min(allowed, rng.choice((0, 0, 20, 30, allowed * 0.2))), 2)
    cas = [f"CAS*CO*45*{charge - allowed:.2f}"]
    if share:
        cas.append(f"CAS*PR*{rng.choice('123')}*{share:.2f}")
    return [
        f"SVC*{procedure}*{charge}*{allowed - share:.2f}**1",
        f"DTM*472*{date}",
        *cas,
        f"REF*6R*{rng.randint(10**8, 10**9)}",
        f"AMT*B6*{allowed:.2f}",
    ]


def _claim(rng: random.Random, number: int, filing: str, status: str) -> list[str]:
    date = f"2024{rng.randint(1, 9):02d}{rng.randint(1, 28):02d}"
    count = rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 6))
    denied_line = status == "1" and rng.random() < 0.06
    lines = [
        _line(rng, status == "4" or (denied_line and index == 0), date) for index in range(count)
    ]
    billed = sum(float(line[0].split("*")[2]) for line in lines)
    paid = sum(float(line[0].split("*")[3]) for line in lines)
    sign = -1 if status == "22" else 1
    claim = [
        f"CLP*PCN{number:09d}*{status}*{sign * billed:.2f}*{sign * paid:.2f}*0*{filing}"
        f"*{number:013d}*11*1",
        f"NM1*QC*1*PATIENT{number % 997}*FIRST****MI*W{number:09d}",
        f"NM1*82*1*DOCTOR*ANNE****XX*{1000000000 + number % 7919}",
        f"DTM*232*{date}",
        f"DTM*050*{date[:6]}28",
        f"AMT*AU*{paid:.2f}",
    ]
    if status == "4":
        claim.append("MOA***MA130")
    for line in lines:
        claim += line
    return claim


def _transaction(rng: random.Random, control: int, first_claim: int, claims: int) -> list[str]:
    name, payer_id, filings = PAYERS[control % len(PAYERS)]
    body = [
        f"ST*835*{control:04d}",
        f"BPR*I*1000.00*C*ACH*CCP*01*999999999*DA*123456*1{payer_id}0000**01*888888888*DA*98765"
        "*20241015",
        f"TRN*1*{control:010d}*1{payer_id}0000",
        "DTM*405*20241014",
        f"N1*PR*{name}",
        "N3*1 PAYER WAY",
        "N4*ANYTOWN*NY*10001",
        f"REF*2U*{payer_id}",
        "PER*BL*PROVIDER SERVICES*TE*8005551212",
        "N1*PE*GOOD HEALTH CLINIC*XX*1999999984",
        "LX*1",
    ]
    for number in range(first_claim, first_claim + claims):
        roll = rng.random()
        status = "4" if roll < 0.07 else "2" if roll < 0.12 else "1"
        filing = rng.choice(filings)
        if roll > 0.99:  # a reversal of an earlier payment followed by its correction
            body += _claim(rng, number, filing, "22")
        body += _claim(rng, number, filing, status)
    if rng.random() < 0.3:
        body.append(f"PLB*1999999984*20241231*L6:{control}*-1.25")
    body.append(f"SE*{len(body) + 1}*{control:04d}")
    return body


def write_synthetic_file(path: Path, size_bytes: int, seed: int) -> int:
    """Write one synthetic 835 of at least ``size_bytes``; returns its claim count."""
    rng = random.Random(seed)
    newline = "\r\n" if seed % 2 else ""
    claims = control = 0
    with path.open("w", encoding="ascii", newline="") as out:
        out.write(
            f"ISA*00*          *00*          *ZZ*PAYERSENDER    *ZZ*PROVIDERRECV   *241014*0930"
            f"*^*00501*{seed:09d}*0*P*:~{newline}GS*HP*SENDER*RECEIVER*20241014*0930*{seed}*X"
            f"*005010X221A1~{newline}"
        )
        while out.tell() < size_bytes:
            control += 1
            body = _transaction(rng, control, claims + 1, rng.randint(200, 1500))
            claims += sum(1 for segment in body if segment.startswith("CLP"))
            out.write("".join(f"{segment}~{newline}" for segment in body))
        out.write(f"GE*{control}*{seed}~{newline}IEA*1*{seed:09d}~{newline}")
    return claims


def ensure_batch(folder: Path, size_mb: int, files: int) -> list[Path]:
    """The synthetic batch, generated once per size and file count."""
    folder = folder / f"{size_mb}mb-{files}files"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"remit-{index:03d}.835" for index in range(files)]
    per_file = size_mb * MIB // files
    for index, path in enumerate(paths):
        if not path.exists() or path.stat().st_size < per_file:
            print(f"generating {path} ({per_file / MIB:.0f} MiB)", file=sys.stderr)
            write_synthetic_file(path, per_file, seed=index + 1)
    return paths


# ---------------------------------------------------------------------------- measuring


def _measure_ingest(out: str, paths: list[str]) -> dict[str, float]:
    from ingest.batch import ingest

    report = ingest(paths, out)
    failed = [str(outcome.error) for outcome in report.failed]
    if failed:
        raise SystemExit(f"benchmark input failed to ingest: {failed[:3]}")
    return {"rows": report.rows_written, "claims": report.total("claims")}


def _measure_tokenizer(paths: list[str]) -> dict[str, float]:
    from ingest.x12 import SegmentReader

    segments = sum(sum(1 for _ in SegmentReader(path).segments()) for path in paths)
    return {"segments": segments}


def _measure_pyx12(paths: list[str]) -> dict[str, float]:
    from pyx12.x12file import X12Reader

    segments = 0
    for path in paths:
        with X12Reader(path) as reader:
            segments += sum(1 for _ in reader)
    return {"segments": segments}


def _child(task: str, arguments: list[str]) -> None:
    """Run one measurement in this (fresh) process and print it as JSON: wall-clock seconds,
    CPU seconds (what one core spent, whatever else the machine runs) and peak RSS."""
    wall, cpu = time.perf_counter(), time.process_time()
    if task == "ingest":
        result = _measure_ingest(arguments[0], arguments[1:])
    elif task == "tokenize":
        result = _measure_tokenizer(arguments)
    else:
        result = _measure_pyx12(arguments)
    result["seconds"] = time.perf_counter() - wall
    result["cpu_seconds"] = time.process_time() - cpu
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _run_child(task: str, arguments: list[str]) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", task, *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{task} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _sample(paths: list[Path], limit_mb: float) -> list[Path]:
    chosen: list[Path] = []
    total = 0
    for path in paths:
        if chosen and total + path.stat().st_size > limit_mb * MIB:
            break
        chosen.append(path)
        total += path.stat().st_size
    return chosen


def _megabytes(paths: list[Path]) -> float:
    return sum(path.stat().st_size for path in paths) / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the batch (MiB)")
    parser.add_argument("--files", type=int, default=16, help="number of files in the batch")
    parser.add_argument("--pyx12-mb", type=float, default=128, help="sample for the tokenizers")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--ingest-only", action="store_true", help="skip the tokenizer comparison")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1:])
        return
    paths = ensure_batch(args.data_dir, args.size_mb, args.files)
    sample = _sample(paths, args.pyx12_mb)
    out = args.data_dir / "bench-denials.parquet"
    results = {"ingest": (paths, _run_child("ingest", [str(out), *map(str, paths)]))}
    if not args.ingest_only:
        results["tokenize"] = (sample, _run_child("tokenize", list(map(str, sample))))
        results["pyx12"] = (sample, _run_child("pyx12", list(map(str, sample))))
    print(_table(results))


def _table(results: dict[str, tuple[list[Path], dict[str, float]]]) -> str:
    labels = {
        "ingest": "denial-triage ingest, end to end (file to contract rows)",
        "tokenize": "denial-triage tokenizer (`SegmentReader.segments`)",
        "pyx12": "pyx12 tokenizer (`X12Reader`)",
    }
    rows = [
        "| run | input MiB | wall s | MiB/s (wall) | CPU s | MiB/s (CPU) | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    speed = {}
    for task, (paths, result) in results.items():
        size = _megabytes(paths)
        speed[task] = size / result["cpu_seconds"]
        rows.append(
            f"| {labels[task]} | {size:,.0f} | {result['seconds']:.1f} "
            f"| {size / result['seconds']:.1f} | {result['cpu_seconds']:.1f} | {speed[task]:.1f} "
            f"| {result['peak_rss_mb']:.0f} |"
        )
    ingest = results["ingest"][1]
    rows += [
        "",
        f"Ingest wrote {int(ingest['rows']):,} denial rows from {int(ingest['claims']):,} claims.",
    ]
    if "pyx12" in speed:
        rows.append(
            f"End-to-end ingest is {speed['ingest'] / speed['pyx12']:.1f}x pyx12's tokenizer; "
            f"tokenizer to tokenizer, {speed['tokenize'] / speed['pyx12']:.1f}x (CPU time)."
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
