"""An OpenAI-compatible chat endpoint on 127.0.0.1 for benches/peer/run.sh (standard library only).

Every POST to .../chat/completions is answered after LATENCY seconds: while the conversation
holds fewer than 3 tool results, with a call of the request's first tool (nlah's `shell`,
Inspect's `bash`) running the next of three commands; then with a call of the framework's way
to stop (nlah's `finish`, Inspect's `submit`) when it offers one, else with text. So nlah and
Inspect do the same work: 4 model calls and 3 shell commands per sample.

Usage: python3 mock.py PORT_FILE [LATENCY_MS]  (writes the port it listens on to PORT_FILE)
"""

import asyncio
import json
import sys
import time

COMMANDS = [
    "mkdir -p artifacts && echo 42 > artifacts/result.txt",
    "cd artifacts",
    "ls",
]
STOP_TOOLS = ("finish", "submit")


def answer(req):
    tools = [t.get("function", {}) for t in req.get("tools") or []]
    results = sum(1 for m in req.get("messages", []) if m.get("role") == "tool")
    work = [t for t in tools if t.get("name") not in STOP_TOOLS]
    stop = [t for t in tools if t.get("name") in STOP_TOOLS]
    call = None
    if results < len(COMMANDS) and work:
        tool = work[0]
        params = tool.get("parameters", {})
        arg = (params.get("required") or list(params.get("properties", {})) or ["command"])[0]
        call = (tool["name"], {arg: COMMANDS[results]})
    elif stop:
        tool = stop[0]
        params = tool.get("parameters", {})
        args = {}
        for name in params.get("required") or []:
            prop = params.get("properties", {}).get(name, {})
            args[name] = prop["enum"][0] if prop.get("enum") else "done"
        call = (tool["name"], args)
    message = {"role": "assistant", "content": "" if call else "Done."}
    if call:
        message["tool_calls"] = [
            {
                "id": f"call_{results}",
                "type": "function",
                "function": {"name": call[0], "arguments": json.dumps(call[1])},
            }
        ]
    return {
        "id": f"mock-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.get("model", "mock"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if call else "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
    }


async def handle(reader, writer, latency):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                await asyncio.sleep(latency)
                status, out = "200 OK", json.dumps(answer(json.loads(body))).encode()
            else:
                status, out = "404 Not Found", b'{"error": {"message": "not found"}}'
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(out)}\r\n\r\n".encode()
                + out
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    port_file = sys.argv[1]
    latency = (float(sys.argv[2]) if len(sys.argv) > 2 else 200.0) / 1000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, latency), "127.0.0.1", 0, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    with open(port_file, "w") as f:
        f.write(str(port))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
