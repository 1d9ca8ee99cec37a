#!/usr/bin/env python3
"""Compares two `nlah report --format json` files, ignoring what a replay cannot reproduce
(runtimes). Prints the differences and exits 1 when there are any.

Usage: compare.py RECORDED.json REPLAYED.json
"""

import json
import sys

# Wall time differs between a run on a model and its replay; nothing else may.
IGNORED = {"runtime_min"}


def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in IGNORED}
    if isinstance(v, list):
        return [strip(x) for x in v]
    if isinstance(v, float):
        return round(v, 9)
    return v


def diff(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            diff(a.get(k), b.get(k), f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path}: recorded {json.dumps(a)[:200]}, replayed {json.dumps(b)[:200]}")


def main():
    recorded, replayed = (strip(json.load(open(p))) for p in sys.argv[1:3])
    out = []
    diff(recorded, replayed, "report", out)
    for line in out:
        print(line)
    if out:
        print(f"{len(out)} difference(s) between {sys.argv[1]} and {sys.argv[2]}")
        sys.exit(1)
    print(f"the replay reproduces {sys.argv[1]} (runtimes aside)")


if __name__ == "__main__":
    main()
