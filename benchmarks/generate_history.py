"""Benchmark: synthetic history generation time and peak memory, by row count.

Run by hand: ``.venv/bin/python benchmarks/generate_history.py [--rows 100000 1000000]``.
Each size runs in a fresh process so its peak resident memory is its own. Prints a markdown
table; the issue's target is 1,000,000 rows in at most 2 minutes with bounded memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from training.synthetic import generate_history
rows, out = int(sys.argv[1]), Path(sys.argv[2])
started = time.perf_counter()
generate_history(rows, 7, out)
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb,
                  "file_mb": out.stat().st_size / 2**20}))
"""


def measure(rows: int, folder: Path) -> dict[str, float]:
    """Generate ``rows`` denials in a child process and return its figures."""
    out = folder / f"history-{rows}.parquet"
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(rows), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    args = parser.parse_args()
    print("| rows | seconds | rows/s | peak memory (MB) | Parquet size (MB) |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            m = measure(rows, Path(folder))
            print(
                f"| {rows:,} | {m['seconds']:.1f} | {rows / m['seconds']:,.0f} "
                f"| {m['peak_mb']:.0f} | {m['file_mb']:.1f} |"
            )


if __name__ == "__main__":
    main()
