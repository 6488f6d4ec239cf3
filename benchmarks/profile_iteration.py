"""Profile one quickstart iteration of the real search with py-spy and summarise where its time goes.

    .venv/bin/pip install py-spy                     # once
    .venv/bin/python benchmarks/profile_iteration.py [--output /tmp/dataswarms-profile] [--rate 50] [--top 5]
    .venv/bin/python benchmarks/profile_iteration.py --raw FILE    # summarise an earlier record only

Runs ``dataswarms run --iterations 1`` (quickstart) under ``py-spy record --format raw`` and keeps the
samples whose stack passes through one of the iteration's stages (``stages.synthesis.synthesize``,
``stages.scoring.score``, ``stages.pso.pso_step``); setup, SFT (cached after the first run) and the export are
left out. Prints seconds and shares per stage, the top costs by the deepest dataswarms function on the stack
(what dataswarms asked for: a generate call, an embedding, a model load), the top dataswarms functions by
inclusive time, and the top functions of any library by own time. Seconds are samples / rate: py-spy pauses the process to sample, so
they run ~20-25 % above the stage seconds of an unprofiled run (``synthesis.json``, ``scoring.json``).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

STAGES = {
    "synthesize (dataswarms_core/stages/synthesis.py": "synthesis",
    "score (dataswarms_core/stages/scoring.py": "scoring",
    "pso_step (dataswarms_core/stages/pso.py": "pso",
}


def summarise(raw: Path, rate: float, top: int) -> None:
    """Print the iteration's costs from a py-spy raw (collapsed stacks) file."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    deepest: collections.Counter[str] = collections.Counter()
    stages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        start = next((i for i, f in enumerate(frames) if f.startswith(tuple(STAGES))), None)
        if start is None:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in frames[start:]]  # function (file), lines merged
        stages[next(v for k, v in STAGES.items() if frames[0].startswith(k))] += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
        ours = [f.split(" (")[0] for f in frames if "dataswarms_core/" in f]
        callers = [f for f in ours[:-1] if f != ours[-1]]
        deepest[f"{ours[-1]} <- {callers[-1]}" if callers else ours[-1]] += n
    if not total:
        sys.exit(f"{raw}: no sample passes through an iteration stage")

    def row(label: str, n: int) -> str:
        return f"  {n / rate:7.1f} s {100 * n / total:5.1f} %  {label}"

    print(f"one iteration: {total / rate:.1f} s sampled ({total} samples at {rate:g} Hz)")
    for stage, n in stages.most_common():
        print(row(stage, n))
    print(f"top {top} costs: time under the deepest dataswarms function on the stack (<- its caller):")
    for k, n in deepest.most_common(top):
        print(row(k, n))
    print(f"top {top} dataswarms functions by inclusive time (stage entry points left out):")
    ours = [
        (k, n)
        for k, n in inclusive.most_common()
        if "dataswarms_core/" in k and not k.startswith(tuple(STAGES))
    ]
    for k, n in ours[:top]:
        print(row(k, n))
    print(f"top {top} functions by own time:")
    for k, n in own.most_common(top):
        print(row(k, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", default="/tmp/dataswarms-profile", help="storage.root of the profiled run"
    )
    parser.add_argument("--rate", type=float, default=50, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--raw", type=Path, help="summarise this py-spy raw file instead of running")
    args = parser.parse_args()
    if args.raw is not None:
        summarise(args.raw, args.rate, args.top)
        return
    bindir = Path(sys.executable).parent
    py_spy = shutil.which("py-spy", path=str(bindir)) or shutil.which("py-spy")
    if py_spy is None:
        sys.exit(f"py-spy is not installed: {bindir / 'pip'} install py-spy")
    name = f"profile-{time.strftime('%Y%m%d-%H%M%S')}"
    raw = Path(args.output) / f"{name}.txt"
    raw.parent.mkdir(parents=True, exist_ok=True)
    command = [
        py_spy, "record", "--rate", str(int(args.rate)), "--format", "raw", "-o", str(raw), "--",
        str(bindir / "dataswarms"), "run", "--iterations", "1", "--output", args.output, "--run-name", name,
    ]  # fmt: skip
    subprocess.run(command, check=True)
    summarise(raw, args.rate, args.top)
    print(f"py-spy raw samples: {raw}; run: {Path(args.output) / name}")


if __name__ == "__main__":
    main()
