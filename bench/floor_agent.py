"""The floor: the least an agent can do per step, with the same HTTP library.

A bare loop: POST the conversation (same system prompt, tools and body shape as
nano-code, taken from a spec file the harness captured from nano-code's own
first request), parse the JSON or SSE reply, run each `shell` call with
`bash -c` via subprocess, append the messages, repeat. No recording, no
display, no state machine. Prints the final text. With `--sandboxed`, each
command runs under the bwrap command line nano-code's sandbox builds for the
workspace (the spec's `bwrap`), so the sandbox's own cost is the same on both.

    python bench/floor_agent.py --base-url URL --spec spec.json -p TASK [--stream] [--max-steps N] [--sandboxed]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import urllib3


def read_sse(response: urllib3.BaseHTTPResponse) -> dict:
    """Assemble a streamed reply into a chat.completion message (writing text as it comes)."""
    content: list[str] = []
    calls: dict[int, dict] = {}
    buffer = b""
    while True:
        piece = response.read1(65536)
        if not piece:
            break
        buffer += piece
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue
            chunk = json.loads(event[6:])
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    content.append(delta["content"])
                    sys.stdout.write(delta["content"])
                    sys.stdout.flush()
                for part in delta.get("tool_calls") or []:
                    call = calls.setdefault(
                        part["index"],
                        {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                    )
                    call["id"] = part.get("id") or call["id"]
                    function = part.get("function") or {}
                    call["function"]["name"] += function.get("name") or ""
                    call["function"]["arguments"] += function.get("arguments") or ""
    message: dict = {"role": "assistant", "content": "".join(content) or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("-p", "--prompt", required=True)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--sandboxed", action="store_true", help="run commands under the spec's bwrap")
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    wrap = spec["bwrap"] if args.sandboxed else []
    url = args.base_url.rstrip("/") + "/chat/completions"
    pool = urllib3.PoolManager(num_pools=2, maxsize=1, retries=False)
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if args.stream else "application/json",
    }
    messages = [{"role": "system", "content": spec["system"]}, {"role": "user", "content": args.prompt}]
    for _ in range(args.max_steps):
        body = {"model": spec["model"], "messages": messages, "tools": spec["tools"]}
        if args.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        response = pool.request(
            "POST", url, body=payload, headers=headers, preload_content=False, redirect=False
        )
        if args.stream:
            message = read_sse(response)
        else:
            message = json.loads(response.read())["choices"][0]["message"]
            if message.get("content") and not message.get("tool_calls"):
                sys.stdout.write(message["content"])
        response.release_conn()
        messages.append(message)
        if not message.get("tool_calls"):
            sys.stdout.write("\n")
            return 0
        for call in message["tool_calls"]:
            command = json.loads(call["function"]["arguments"])["command"]
            done = subprocess.run(
                [*wrap, "/bin/bash", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call["id"],
                    "content": done.stdout.decode("utf-8", "replace"),
                }
            )
    return 1


if __name__ == "__main__":
    sys.exit(main())
