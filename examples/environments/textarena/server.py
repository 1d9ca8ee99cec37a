#!/usr/bin/env python3
"""TextArena games served over MCP stdio, following docs/ENVIRONMENTS.md (`nlah/env`).

Needs `textarena==0.7.4` (pinned with what it pulls in: requirements.txt); everything else is
Python's standard library. Config (task.toml `[env] config`):

  game      a TextArena env id, e.g. "TowerOfHanoi-v0", "GuessTheNumber-v0", "TicTacToe-v0"
  seed      the game's seed (default: the run's --seed)
  seed_offset  added to the run's --seed when `seed` is not given (default 0), so that tasks
            can hold out seeds: e.g. training tasks at 1000 + seed, evaluation at seed
  opponent  for two-player games: "first-legal" (the default and only one): a fixed scripted
            opponent that plays the first legal move in a stable order (games whose legal moves
            this adapter knows: TicTacToe)

The agent is player 0. Tools: `act(action)` submits one action in the game's own format (e.g.
"[A C]"; "[4]"), `observe()` repeats the current observation. The state follows TextArena:
an invalid move raises the game's error count and the player may retry once; a second invalid
move in a row ends the game (`game_info[0]["invalid_move"]`), with the reward TextArena gives.
Legal actions are listed for the games this adapter can enumerate (TowerOfHanoi, TicTacToe).
The games run offline: the raw variant (`<id>-raw`, no wrappers) is used, and the
observation is the game's messages since the player's last action.
"""

import json
import sys

PROTOCOL = "2025-06-18"
TWO_PLAYER = {"TicTacToe"}


def base_name(game_id):
    return game_id.split("-")[0]


def legal_actions(env, game_id):
    gs = env.state.game_state
    name = base_name(game_id)
    if name == "TowerOfHanoi":
        t = gs["towers"]
        return [f"[{a} {b}]" for a in "ABC" for b in "ABC"
                if a != b and t[a] and (not t[b] or t[b][-1] > t[a][-1])]
    if name == "TicTacToe":
        b = gs["board"]
        return [f"[{r * 3 + c}]" for r in range(3) for c in range(3) if not b[r][c]]
    return None


def render(messages):
    out = []
    for item in messages:
        if isinstance(item, (list, tuple)) and len(item) >= 2:
            sender, text = item[0], item[1]
            who = "GAME" if sender == -1 else f"Player {sender}"
            out.append(f"[{who}] {text}")
        else:
            out.append(str(item))
    return "\n".join(out)


class Game:
    def __init__(self, config, seed):
        import textarena as ta  # imported here so that a missing package is a clear reset error

        self.game_id = str(config.get("game", "TowerOfHanoi-v0"))
        self.two = base_name(self.game_id) in TWO_PLAYER
        if config.get("opponent", "first-legal") != "first-legal":
            raise ValueError(f"unknown opponent {config.get('opponent')!r}; use \"first-legal\"")
        self.env = ta.make(env_id=self.game_id + "-raw")
        self.env.reset(num_players=2 if self.two else 1, seed=int(config.get("seed", seed + int(config.get("seed_offset", 0)))))
        self.steps = 0
        self.invalid = False
        self.invalid_reason = None
        self.last = ""
        self.collect()

    def collect(self):
        """The player's new messages, after the opponent's turns."""
        text = []
        while True:
            pid, obs = self.env.get_observation()
            if pid == 0 or self.env.state.done:
                if pid == 0 and obs:
                    text.append(render(obs))
                break
            # The scripted opponent: its own observation is read and discarded.
            moves = legal_actions(self.env, self.game_id) or []
            self.env.step(moves[0] if moves else "[0]")
        if text:
            self.last = "\n".join(text)
        return self.last

    def act(self, action):
        self.steps += 1
        before = self.env.state.error_count
        done, _ = self.env.step(action)
        st = self.env.state
        info = st.game_info.get(0, {})
        self.invalid = bool(st.made_invalid_move or st.error_count > before or info.get("invalid_move"))
        obs = self.collect()
        self.invalid_reason = None
        if self.invalid:
            reason = info.get("reason") if info.get("invalid_move") else None
            if not reason:
                marker = "You attempted an invalid move. Reason: "
                i = obs.rfind(marker)
                reason = obs[i + len(marker):].split(" Please resubmit")[0] if i >= 0 else "invalid move"
            self.invalid_reason = reason
        return obs

    def state(self):
        st = self.env.state
        done = bool(st.done)
        rewards = st.rewards or {}
        reward = rewards.get(0) if done else None
        return {
            "observation": self.last,
            "reward": None if reward is None else float(reward),
            "done": done,
            "invalid": self.invalid,
            "invalid_reason": self.invalid_reason,
            "legal_actions": [] if done else legal_actions(self.env, self.game_id),
            "step": self.steps,
        }


TOOLS = [
    {
        "name": "act",
        "description": "Submit one action in the game's own format, e.g. \"[A C]\" in Tower of Hanoi or \"[4]\" in Tic Tac Toe.",
        "inputSchema": {
            "type": "object",
            "properties": {"action": {"type": "string", "description": "the action text"}},
            "required": ["action"],
        },
    },
    {
        "name": "observe",
        "description": "Repeat the current observation; takes no action.",
        "inputSchema": {"type": "object", "properties": {}},
    },
]


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main():
    game = None
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
            continue
        try:
            if method == "initialize":
                result = {
                    "protocolVersion": params.get("protocolVersion", PROTOCOL),
                    "capabilities": {"tools": {}, "experimental": {"nlah/env": {"version": 1}}},
                    "serverInfo": {"name": "nlah-textarena", "version": "0.7.4"},
                }
            elif method == "ping":
                result = {}
            elif method == "tools/list":
                result = {"tools": TOOLS}
            elif method == "env/reset":
                game = Game(params.get("config") or {}, int(params.get("seed") or 0))
                result = game.state()
            elif method in ("env/state", "tools/call") and game is None:
                raise ValueError("the game has not been reset (env/reset)")
            elif method == "env/state":
                result = game.state()
            elif method == "tools/call":
                name, args = params.get("name"), params.get("arguments") or {}
                if name == "act":
                    if game.env.state.done:
                        text = "the game is over"
                    else:
                        text = game.act(str(args.get("action", "")))
                elif name == "observe":
                    text = game.last
                else:
                    raise ValueError(f"unknown tool {name!r}")
                state = game.state()
                result = {
                    "content": [{"type": "text", "text": text}],
                    "isError": bool(state["invalid"]),
                    "_meta": {"nlah/env": state},
                }
            else:
                send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": f"method not found: {method}"}})
                continue
        except Exception as e:  # noqa: BLE001 - every failure goes back to the client as an error
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32603, "message": f"{type(e).__name__}: {e}"}})
            continue
        send({"jsonrpc": "2.0", "id": mid, "result": result})


if __name__ == "__main__":
    main()
