"""How long the commands a pre-commit hook or a newcomer runs take to start, as ratios to a
Python that imports only click and yaml (what any click CLI reading YAML pays anyway).

    python benchmarks/startup_bench.py [--repeat 7]

Each case is run ``--repeat`` times as a fresh process; the median wall time is reported, then
its ratio to the baseline measured in the same run. Goals: ``ftops --help`` <= 2x,
``ftops validate`` of a 20-line dataset <= 6x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SPEC = """\
datasets:
  tiny: {path: tiny.jsonl}
models:
  bot: {base: gpt-4o-mini-2024-07-18, training: tiny}
"""


def _tiny_project(root: Path) -> Path:
    """A spec and a 20-line chat dataset in ``root`` (validate needs no git repository)."""
    rows = [json.dumps({"messages": [{"role": "user", "content": f"Question {i}?"},
                                     {"role": "assistant", "content": f"Answer {i}."}]})
            for i in range(20)]
    (root / "tiny.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "specs.yaml").write_text(SPEC, encoding="utf-8")
    return root / "specs.yaml"


def _median_seconds(argv: list[str], repeat: int, cwd: Path) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per case (median kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftops-startup-") as tmp:
        root = Path(tmp)
        spec = _tiny_project(root)
        cases = {
            "python -c 'import click, yaml' (baseline)":
                [sys.executable, "-c", "import click, yaml"],
            "ftops --help": [str(BIN / "ftops"), "--help"],
            "ftops schema": [str(BIN / "ftops"), "schema"],
            "ftops validate (20 lines)": [str(BIN / "ftops"), "validate", str(spec)],
        }
        goals = {"ftops --help": 2.0, "ftops validate (20 lines)": 6.0}
        results = {name: _median_seconds(argv, args.repeat, root) for name, argv in cases.items()}
    baseline = next(iter(results.values()))
    print(f"{'case':<44} {'median s':>9} {'ratio':>7}  goal")
    for name, seconds in results.items():
        goal = f"<= {goals[name]:g}x" if name in goals else ""
        print(f"{name:<44} {seconds:>9.3f} {seconds / baseline:>6.2f}x  {goal}")


if __name__ == "__main__":
    main()
