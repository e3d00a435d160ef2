"""Benchmark: the whole training job (three models, evaluation, MLflow logging) by history size.

Run by hand: ``.venv/bin/python benchmarks/train_scale.py [--rows 100000 300000 1000000]``.
Each size is generated first (not timed), then trained in a fresh process whose wall time and
peak resident memory are reported. Targets: 1M rows in at most 10 minutes, peak at most 6 GB.
Prints a markdown table and writes ``train_scale.json`` beside the data when ``--json`` is set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from training.synthetic import generate_history

CHILD = """
import json, resource, sys, time
from pathlib import Path
from training.run import TrainingOptions, train
data, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
started = time.perf_counter()
result = train(TrainingOptions(data=data, data_dir=data_dir))
seconds = time.perf_counter() - started
report = result.evaluation.report
print(json.dumps({
    "seconds": seconds,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "train_rows": report["rows"]["train"],
    "accuracy": report["root_cause"]["accuracy"],
    "recovery_auc": report["recovery"]["roc_auc"],
    "preventable_auc": report["preventable"]["roc_auc"],
}))
"""


def measure(rows: int, folder: Path) -> dict[str, float]:
    data = generate_history(rows, 7, folder / f"history-{rows}.parquet")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(folder / f"data-{rows}")],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return {"rows": rows, **json.loads(completed.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    results = []
    print(
        "| rows | training rows | minutes | peak memory (GB) "
        "| root-cause accuracy | recovery AUC | preventable AUC |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            m = measure(rows, Path(folder))
            results.append(m)
            print(
                f"| {rows:,} | {m['train_rows']:,} | {m['seconds'] / 60:.1f} "
                f"| {m['peak_mb'] / 1024:.2f} | {m['accuracy']:.3f} "
                f"| {m['recovery_auc']:.3f} | {m['preventable_auc']:.3f} |",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
