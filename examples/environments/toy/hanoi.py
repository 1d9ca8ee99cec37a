#!/usr/bin/env python3
"""Tower of Hanoi as an MCP stdio server, Python standard library only.

A deterministic environment for nlah's tests and examples. It follows the convention of
docs/ENVIRONMENTS.md: it declares the `nlah/env` capability, answers `env/reset` (config:
`disks`, `seed`, `max_moves`) and `env/state`, and every tool result carries the state under
`_meta["nlah/env"]`: observation, reward, done, invalid (and why), legal actions.

Invalid moves are counted as TextArena counts them: one invalid move is allowed (the player may
retry), a second invalid move in a row ends the episode, with a reward that reflects partial
progress (the share of disks already on the target peg), never a win.

Tools:
  move(from, to)   pegs "A", "B", "C": move the top disk of `from` onto `to`
  act(action)      the same move written as text, e.g. "move A C" (as `legal_actions` lists them)
  look()           the current state, no move

Test knobs (config): `crash_at_step` exits the process when that action arrives, `hang_at_step`
never answers it, `garbage_at_step` answers with a line that is not JSON-RPC.
"""

import json
import sys
import time

PEGS = "ABC"
PROTOCOL = "2025-06-18"


class Hanoi:
    def __init__(self, config=None, seed=0):
        config = config or {}
        self.config = config
        self.n = int(config.get("disks", 3))
        if not 1 <= self.n <= 8:
            raise ValueError("disks must be 1 to 8")
        seed = int(config.get("seed", seed))
        self.start = seed % 3
        self.target = (self.start + 1 + (seed // 3) % 2) % 3
        self.pegs = [[], [], []]
        self.pegs[self.start] = list(range(self.n, 0, -1))
        self.max_moves = int(config.get("max_moves", 2 ** self.n - 1 + 2 * self.n))
        self.moves = 0
        self.steps = 0
        self.invalid_run = 0
        self.done = False
        self.reward = 0.0
        self.invalid = False
        self.invalid_reason = None

    def legal(self):
        out = []
        for i in range(3):
            for j in range(3):
                if i != j and self.pegs[i] and (not self.pegs[j] or self.pegs[j][-1] > self.pegs[i][-1]):
                    out.append(f"move {PEGS[i]} {PEGS[j]}")
        return out

    def progress(self):
        on = 0
        for want, disk in zip(range(self.n, 0, -1), self.pegs[self.target]):
            if want != disk:
                break
            on += 1
        return round(on / self.n, 4)

    def observation(self):
        lines = [f"Tower of Hanoi with {self.n} disks: move all disks from peg {PEGS[self.start]} "
                 f"to peg {PEGS[self.target]}; never put a larger disk on a smaller one."]
        for i in range(3):
            lines.append(f"{PEGS[i]}: {' '.join(str(d) for d in self.pegs[i]) or '(empty)'}")
        lines.append(f"moves: {self.moves} of at most {self.max_moves}")
        if self.done:
            lines.append("solved!" if self.reward == 1.0 else "the game is over.")
        return "\n".join(lines)

    def state(self):
        return {
            "observation": self.observation(),
            "reward": self.reward,
            "done": self.done,
            "invalid": self.invalid,
            "invalid_reason": self.invalid_reason,
            "legal_actions": [] if self.done else self.legal(),
            "step": self.steps,
        }

    def refuse(self, reason):
        self.invalid = True
        self.invalid_run += 1
        if self.invalid_run >= 2:
            self.done = True
            self.reward = self.progress() * 0.5
            self.invalid_reason = f"{reason}; a second invalid move in a row ends the game"
        else:
            self.invalid_reason = f"{reason}; one more invalid move in a row ends the game"
        return self.invalid_reason

    def move(self, src, dst):
        self.steps += 1
        self.invalid = False
        self.invalid_reason = None
        if self.done:
            return self.refuse("the game is over")
        if src not in PEGS or dst not in PEGS or not src or not dst:
            return self.refuse(f"unknown peg: pegs are A, B and C, not {src!r} and {dst!r}")
        i, j = PEGS.index(src), PEGS.index(dst)
        if i == j:
            return self.refuse("a disk must move to another peg")
        if not self.pegs[i]:
            return self.refuse(f"peg {src} is empty")
        if self.pegs[j] and self.pegs[j][-1] < self.pegs[i][-1]:
            return self.refuse(f"disk {self.pegs[i][-1]} cannot go on the smaller disk {self.pegs[j][-1]}")
        self.pegs[j].append(self.pegs[i].pop())
        self.moves += 1
        self.invalid_run = 0
        if len(self.pegs[self.target]) == self.n:
            self.done, self.reward = True, 1.0
            return f"moved {src} -> {dst}; solved in {self.moves} moves"
        if self.moves >= self.max_moves:
            self.done, self.reward = True, self.progress() * 0.5
            return f"moved {src} -> {dst}; the {self.max_moves} moves are spent"
        return f"moved {src} -> {dst}"


TOOLS = [
    {
        "name": "move",
        "description": "Move the top disk of peg `from` onto peg `to`.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "from": {"type": "string", "enum": ["A", "B", "C"], "description": "the peg to take the top disk from"},
                "to": {"type": "string", "enum": ["A", "B", "C"], "description": "the peg to put it on"},
            },
            "required": ["from", "to"],
            "additionalProperties": False,
        },
    },
    {
        "name": "act",
        "description": "Take one action written as text, exactly as the legal actions list it, e.g. \"move A C\".",
        "inputSchema": {
            "type": "object",
            "properties": {"action": {"type": "string", "description": "e.g. \"move A C\""}},
            "required": ["action"],
            "additionalProperties": False,
        },
    },
    {
        "name": "look",
        "description": "Show the pegs, the moves made and the legal moves; takes no action.",
        "inputSchema": {"type": "object", "properties": {}},
    },
]


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main():
    game = Hanoi()
    calls = 0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        method, mid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if mid is None:
            continue  # notifications
        try:
            if method == "initialize":
                result = {
                    "protocolVersion": params.get("protocolVersion", PROTOCOL),
                    "capabilities": {"tools": {}, "experimental": {"nlah/env": {"version": 1}}},
                    "serverInfo": {"name": "toy-hanoi", "version": "1"},
                }
            elif method == "ping":
                result = {}
            elif method == "env/reset":
                game = Hanoi(params.get("config") or {}, int(params.get("seed") or 0))
                calls = 0
                result = game.state()
            elif method == "env/state":
                result = game.state()
            elif method == "tools/list":
                result = {"tools": TOOLS}
            elif method == "tools/call":
                calls += 1
                name, args = params.get("name"), params.get("arguments") or {}
                cfg = game.config
                if cfg.get("crash_at_step") == calls:
                    sys.stderr.write(f"toy-hanoi: crashing at action {calls} as configured\n")
                    sys.stderr.flush()
                    sys.exit(3)
                if cfg.get("hang_at_step") == calls:
                    time.sleep(3600)
                if cfg.get("garbage_at_step") == calls:
                    sys.stdout.write("this is not JSON-RPC\n")
                    sys.stdout.flush()
                    continue
                if name == "move":
                    text = game.move(str(args.get("from", "")).strip().upper(), str(args.get("to", "")).strip().upper())
                elif name == "act":
                    words = str(args.get("action", "")).split()
                    if len(words) == 3 and words[0].lower() == "move":
                        text = game.move(words[1].upper(), words[2].upper())
                    else:
                        game.steps += 1
                        text = game.refuse(f"unknown action {args.get('action')!r}; write e.g. \"move A C\"")
                elif name == "look":
                    game.invalid, game.invalid_reason = False, None
                    text = "no move made"
                else:
                    send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": f"unknown tool {name}"}})
                    continue
                state = game.state()
                result = {
                    "content": [{"type": "text", "text": f"{text}\n{state['observation']}"}],
                    "isError": bool(state["invalid"]),
                    "_meta": {"nlah/env": state},
                }
            else:
                send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": f"method not found: {method}"}})
                continue
        except (ValueError, TypeError) as e:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": str(e)}})
            continue
        send({"jsonrpc": "2.0", "id": mid, "result": result})


if __name__ == "__main__":
    main()
