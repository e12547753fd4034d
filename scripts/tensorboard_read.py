#!/usr/bin/env python3
"""Reads a folder of TensorBoard event files with the `tensorboard` package (from PyPI), as TensorBoard would, and
prints {tag: [[step, value], ...]} as one JSON line: the independent reader tests/rl/tensorboard_test.cpp checks our
event files against.

  tensorboard_read.py DIR
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    accumulator = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
    accumulator.Reload()
    out = {tag: [[event.step, event.value] for event in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
