#!/usr/bin/env python3
"""A code verifier for Tower of Hanoi (AutoHarness's harness as action verifier, filter and
policy), for both the toy environment (examples/environments/toy/hanoi.py: "A: 3 2 1",
actions "move A C" or move(from, to)) and TextArena's TowerOfHanoi ("A: [3, 2, 1]",
actions "[A C]"). It speaks nlah's code-verifier protocol: one JSON request per line on stdin,
one JSON answer per line on stdout (docs/FORMAT.md, Interface layers).
"""

import json
import re
import sys

PEGS = "ABC"


def parse(observation):
    """The pegs (bottom to top), the target peg and the action format, from the last board."""
    pegs, fmt = None, "move"
    for m in re.finditer(r"(?m)^([ABC]): ?(\[[^\]]*\]|[0-9 ]*|\(empty\))\s*$", observation):
        if m.group(1) == "A":
            pegs = {}
        if pegs is None:
            continue
        body = m.group(2)
        if body.startswith("["):
            fmt = "bracket"
        pegs[m.group(1)] = [int(x) for x in re.findall(r"\d+", body)]
    target = "C"
    t = re.search(r"to (?:peg|tower) ([ABC])", observation)
    if t:
        target = t.group(1)
    return pegs, target, fmt


def write(src, dst, fmt):
    return f"[{src} {dst}]" if fmt == "bracket" else f"move {src} {dst}"


def legal(pegs, fmt):
    out = []
    for a in PEGS:
        for b in PEGS:
            if a != b and pegs.get(a) and (not pegs.get(b) or pegs[b][-1] > pegs[a][-1]):
                out.append(write(a, b, fmt))
    return out


def read_action(action, arguments):
    if action:
        m = re.findall(r"\b([ABCabc])\b", action.replace("[", " ").replace("]", " "))
        if len(m) >= 2:
            return m[-2].upper(), m[-1].upper()
        return None
    if isinstance(arguments, dict) and "from" in arguments and "to" in arguments:
        return str(arguments["from"]).upper(), str(arguments["to"]).upper()
    return None


def next_move(pegs, n, target):
    """The optimal next move bringing disks 1..n onto `target`, from any legal state."""
    while n > 0:
        src = next(p for p in PEGS if n in pegs[p])
        if src == target:
            n -= 1
            continue
        spare = next(p for p in PEGS if p not in (src, target))
        if pegs[src][-1] == n and all(d > n for d in pegs[target]) and all(
            d in pegs[spare] for d in range(1, n)
        ):
            return src, target
        target, n = spare, n - 1
    return None


def answer(req):
    pegs, target, fmt = parse(req.get("observation") or "")
    method = req.get("method")
    if pegs is None or set(pegs) != set(PEGS):
        if method == "is_legal":
            return {"legal": True, "reason": "no board in the observation"}
        return {"actions": []} if method == "legal_actions" else {"action": ""}
    if method == "legal_actions":
        return {"actions": legal(pegs, fmt)}
    if method == "policy":
        n = sum(len(v) for v in pegs.values())
        mv = next_move(pegs, n, target)
        return {"action": write(mv[0], mv[1], fmt) if mv else ""}
    if method == "is_legal":
        if req.get("tool", "").endswith("look") or req.get("tool", "").endswith("observe"):
            return {"legal": True}
        mv = read_action(req.get("action"), req.get("arguments"))
        if mv is None:
            return {"legal": False, "reason": "the action names no source and target peg"}
        src, dst = mv
        if src not in PEGS or dst not in PEGS or src == dst:
            return {"legal": False, "reason": f"{src} -> {dst} is not a move between two pegs"}
        if not pegs[src]:
            return {"legal": False, "reason": f"peg {src} is empty"}
        if pegs[dst] and pegs[dst][-1] < pegs[src][-1]:
            return {"legal": False, "reason": f"disk {pegs[src][-1]} cannot go on the smaller disk {pegs[dst][-1]}"}
        return {"legal": True}
    return {"error": f"unknown method {method!r}"}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        out = answer(req)
        out["id"] = req.get("id")
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
