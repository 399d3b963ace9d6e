"""Times `nudge simulate` for a given size (goal: 6 weeks x 200 people in under a minute).

    python bench/simulate.py --weeks 6 --people 200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT  # noqa: E402,F401 - puts the project on the path

from service import simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    result = simulate.run(args.weeks, people=args.people, seed=args.seed, outbox_dir=Path(tempfile.mkdtemp()))
    wall = time.perf_counter() - start
    print(f"weeks: {args.weeks}; people: {args.people}; emails: {result.outbox_files}")
    print(f"wall time: {wall:.1f} s (goal < 60 s)")


if __name__ == "__main__":
    main()
