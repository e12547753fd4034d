#!/usr/bin/env python3
"""Agreement of our math grader and of Math-Verify with the hand labels of a corpus, side by side, in one run.

Each corpus line is {"gold", "pred", "equal", "category", "source"} (tests/reward/data/math_corpus.jsonl). Ours is
measured by running the `grade` tool over the (gold, pred) pairs; Math-Verify with its documented API, parse() of
each side wrapped in $...$ then verify(gold, pred) with default settings.

Tested with math-verify==0.9.0 (pip install 'math-verify==0.9.0', which pulls latex2sympy2_extended 1.11.0).

  python scripts/math_agreement.py --grader-bin build/bin/grpo            # runs: build/bin/grpo grade --input FILE
  python scripts/math_agreement.py --grader-cmd "/tmp/gradetool/grade"     # runs: CMD < FILE (a stand-in driver)
"""

import argparse
import collections
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

DEFAULT_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reward", "data",
                              "math_corpus.jsonl")


def load_corpus(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            for key, kind in (("gold", str), ("pred", str), ("equal", bool), ("category", str), ("source", str)):
                if not isinstance(row.get(key), kind):
                    sys.exit(f"{path}:{number}: field {key!r} missing or not a {kind.__name__}")
            rows.append(row)
    return rows


def run_ours(rows, grader_bin, grader_cmd, repeat=1):
    """Verdicts of the grade tool, one per row, in order (of the first pass when the corpus is repeated), and the
    tool's stderr, whose summary line states its own throughput."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for _ in range(repeat):
            for row in rows:  # only the pair: the tool would otherwise pass the label through and overwrite it
                f.write(json.dumps({"gold": row["gold"], "pred": row["pred"]}, ensure_ascii=False) + "\n")
        pairs_path = f.name
    try:
        if grader_bin:
            proc = subprocess.run([grader_bin, "grade", "--input", pairs_path], capture_output=True, text=True)
        else:
            with open(pairs_path, encoding="utf-8") as stdin:
                proc = subprocess.run(shlex.split(grader_cmd), stdin=stdin, capture_output=True, text=True)
    finally:
        os.unlink(pairs_path)
    outputs = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or len(outputs) != repeat * len(rows):
        sys.exit(f"grade tool failed (exit {proc.returncode}, {len(outputs)} of {repeat * len(rows)} lines): "
                 f"{proc.stderr}")
    outputs = outputs[:len(rows)]
    verdicts = []
    for out in outputs:
        if "error" in out:
            sys.exit(f"grade tool rejected line {out.get('line')}: {out['error']}")
        verdicts.append((bool(out["equal"]), out.get("reason", "")))
    return verdicts, proc.stderr


def run_math_verify(rows):
    """Verdicts, one per row, and the seconds the whole loop took."""
    from math_verify import parse, verify  # imported here so that --help works without it

    start = time.perf_counter()
    verdicts = []
    for row in rows:
        try:
            gold = parse(f"${row['gold']}$")
            pred = parse(f"${row['pred']}$")
            verdicts.append(bool(verify(gold, pred)))
        except Exception as error:  # a crash on an input is a wrong verdict, not the end of the measurement
            print(f"math-verify raised on {row['gold']!r} / {row['pred']!r}: {error!r}", file=sys.stderr)
            verdicts.append(False)
    return verdicts, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=DEFAULT_CORPUS)
    tool = parser.add_mutually_exclusive_group(required=True)
    tool.add_argument("--grader-bin", help="the grpo binary; run as BIN grade --input FILE")
    tool.add_argument("--grader-cmd", help="a command reading the pairs on stdin and writing grade output")
    parser.add_argument("--show-disagreements", action="store_true", help="list every case either grader gets wrong")
    parser.add_argument("--repeat", type=int, default=50,
                        help="passes over the corpus in our throughput run (ours is too fast to time one pass)")
    args = parser.parse_args()

    rows = load_corpus(args.corpus)
    ours, stderr = run_ours(rows, args.grader_bin, args.grader_cmd, max(1, args.repeat))
    theirs, their_seconds = run_math_verify(rows)

    per_category = collections.defaultdict(lambda: [0, 0, 0])  # cases, ours right, math-verify right
    for row, (our_equal, _), their_equal in zip(rows, ours, theirs):
        for key in (row["category"], "ALL"):
            counts = per_category[key]
            counts[0] += 1
            counts[1] += our_equal == row["equal"]
            counts[2] += their_equal == row["equal"]

    print(f"{'category':<18} {'cases':>5} {'ours':>8} {'math-verify':>12}")
    for key in sorted(k for k in per_category if k != "ALL") + ["ALL"]:
        n, ours_right, theirs_right = per_category[key]
        print(f"{key:<18} {n:>5} {100 * ours_right / n:>7.1f}% {100 * theirs_right / n:>11.1f}%")

    # Throughput on one core: ours as the grade tool reports it (parsing and writing JSON included, process start
    # excluded), math-verify as the Python loop above took (parse + verify per pair).
    match = re.search(r"([0-9.]+) lines/s", stderr)
    their_rate = len(rows) / their_seconds
    if match:
        our_rate = float(match.group(1))
        print(f"throughput, pairs/s on one core: ours {our_rate:,.0f}, math-verify {their_rate:,.0f}, "
              f"ratio {our_rate / their_rate:,.0f}x")
    else:
        print(f"throughput, pairs/s on one core: math-verify {their_rate:,.0f} (the grade tool did not report its own)")

    if args.show_disagreements:
        for row, (our_equal, reason), their_equal in zip(rows, ours, theirs):
            if our_equal != row["equal"] or their_equal != row["equal"]:
                print(f"[{row['category']}] gold {row['gold']!r} pred {row['pred']!r} label {row['equal']}: "
                      f"ours {our_equal} ({reason or 'equal'}), math-verify {their_equal}")


if __name__ == "__main__":
    main()
