"""A small LLM server for the tests, on 127.0.0.1 in its own process: OpenAI's chat completions
(POST /v1/chat/completions) and Anthropic's Messages API (POST /v1/messages), each with its own JSON shapes.

It answers deterministically from the request: the system message says which evidence states to serve
("Serve only when the evidence state is one of: a, b." or "Serve always."), the user message carries
"Evidence state: <state>". POST /control switches behaviour (slow, 401, 429, 500, drop, malformed, unreadable, no_text (a
reply with usage and no text: OpenAI's refusal, Anthropic's empty content),
echo (a route that quotes the request), alternate, close_idle, gzip_chunked, big, drip, drip_chunked, drip_headers; 429_marked: a 429 for a request whose
messages say "[429]", the others answered; ``{"mode": "ok", "limit_first": N}``:
the first N chat requests get a 429 with ``Retry-After: 1``; ``"usage": {...}`` or ``null``: every reply reports
that usage, or none); GET /stats counts the chat requests, lists each
one's arrival (the requests in flight then, and its status) and the usage each reply reported.

Every reply reports ``usage`` in its protocol's shape: input tokens = words of the messages, output tokens =
words of the reply, cached = a quarter of the input, reasoning (OpenAI only) = 3, counted in the output.

    python tests/llm_server.py --port 8000        # to re-record the example's recordings
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SERVE_RULE = re.compile(r"Serve only when the evidence state is one of: ([^.]*)\.")
EVIDENCE = re.compile(r"Evidence state: (\S+)")


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most chat requests being answered at one time
        self.mode = "ok"
        self.delay = 0.0
        self.answers: dict[str, int] = {}
        self.limit_first = 0  # the next this-many chat requests get a 429 with Retry-After: 1
        self.usage: Any = DEFAULT  # the usage every reply reports: DEFAULT (counted), None (no usage), a mapping
        self.arrivals: list[tuple[int, int]] = []  # per chat request: (in flight on arrival, its status)
        self.usages: list[dict[str, Any]] = []  # per 200 reply: the user message and the usage reported
        self.generation = 0  # a reset starts a new one: a request still answered from before it counts nowhere

    def finished(self, generation: int) -> None:
        """A chat request that arrived in ``generation`` is answered."""
        with self.lock:
            if generation == self.generation:
                self.in_flight -= 1


DEFAULT = object()
STATE = State()


def decide(messages: list[dict[str, Any]]) -> str:
    # OpenAI's newer models take the system prompt as a "developer" message (Inspect AI sends it so)
    system = " ".join(m.get("content", "") for m in messages if m.get("role") in ("system", "developer"))
    user = " ".join(m.get("content", "") for m in messages if m.get("role") == "user")
    evidence = EVIDENCE.search(user)
    if "Serve always." in system:
        return "SERVE"
    rule = SERVE_RULE.search(system)
    served = {part.strip() for part in rule.group(1).split(",")} if rule else set()
    return "SERVE" if evidence and evidence.group(1) in served else "ABSTAIN"


#: A judge (docs/evaluators.md) is told "You judge"; it calls a reply SERVE when it states a root cause ("the root
#: cause is/was ..."), else ABSTAIN; "Judge backwards." makes it say the opposite (a judge that disagrees on purpose).
CLAIM = re.compile(r"\broot cause (is|was)\b", re.IGNORECASE)
JUDGED_REPLY = re.compile(r"Reply:\s*(.*)", re.DOTALL)


def reply_text(messages: list[dict[str, Any]], route: str) -> str:
    """The reply's text: a judge's verdict, a prose answer ("Answer in prose."), or the route as JSON."""
    system = " ".join(m.get("content", "") for m in messages if m.get("role") in ("system", "developer"))
    user = " ".join(m.get("content", "") for m in messages if m.get("role") == "user")
    if "You judge" in system:
        found = JUDGED_REPLY.search(user)
        claim = bool(found and CLAIM.search(found.group(1)))
        if "Judge backwards." in system:
            claim = not claim
        reason = "the reply names a root cause" if claim else "the reply names no root cause"
        return json.dumps({"verdict": "SERVE" if claim else "ABSTAIN", "reason": reason})
    if "Answer in prose." in system:
        evidence = EVIDENCE.search(user)
        state = evidence.group(1) if evidence else "unknown"
        if route == "SERVE":
            return f"The root cause is the failure shown in the {state.replace('_', ' ')} evidence; fix that step."
        return "The evidence does not show what failed, so I cannot say why this build broke. Please attach the log."
    return json.dumps({"route": route, "claim": "root cause from the cited evidence" if route == "SERVE" else None})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/stats":
            self._json(200, {"requests": STATE.requests, "max_in_flight": STATE.max_in_flight,
                             "arrivals": STATE.arrivals, "usages": STATE.usages})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/control":
            with STATE.lock:
                STATE.mode = body.get("mode", "ok")
                STATE.delay = float(body.get("delay", 0.0))
                STATE.answers.clear()
                STATE.limit_first = int(body.get("limit_first", 0))
                STATE.usage = body.get("usage", DEFAULT)
                if body.get("reset"):
                    STATE.requests = STATE.max_in_flight = STATE.in_flight = 0
                    STATE.generation += 1
                    STATE.arrivals.clear()
                    STATE.usages.clear()
            self._json(200, {"ok": True})
            return
        anthropic = self.path.endswith("/v1/messages")
        if not (anthropic or self.path.endswith("/chat/completions")):
            self._json(404, {"error": {"message": "not found"}})
            return
        if anthropic:
            problem = _anthropic_problem(body, self.headers)
            if problem:  # as the real API: the SDK's headers and a max_tokens are required
                self._json(400, _anthropic_error("invalid_request_error", problem))
                return
        with STATE.lock:
            STATE.requests += 1
            STATE.in_flight += 1
            STATE.max_in_flight = max(STATE.max_in_flight, STATE.in_flight)
            mode, delay = STATE.mode, STATE.delay
            limited = STATE.limit_first > 0
            STATE.limit_first -= 1 if limited else 0
            STATE.arrivals.append((STATE.in_flight, 429 if limited else 200))
            generation = STATE.generation
        if limited:
            try:
                error = (_anthropic_error("rate_limit_error", "rate limited") if anthropic
                         else {"error": {"message": "rate limited", "type": "rate_limit"}})
                self._json(429, error, {"retry-after": "1"})
            finally:
                STATE.finished(generation)
            return
        try:
            self._answer(body, mode, delay, anthropic, generation)
        finally:
            STATE.finished(generation)

    def _answer(self, body: dict[str, Any], mode: str, delay: float, anthropic: bool, generation: int) -> None:
        if delay and not mode.startswith("drip"):
            time.sleep(delay)
        if mode == "429_marked":  # only a request whose messages say "[429]" is refused
            mode = "429" if "[429]" in json.dumps(body.get("messages")) else "ok"
        if mode in ERRORS:
            kind, message = ERRORS[mode]
            error = (_anthropic_error(kind, message) if anthropic else {"error": {"message": message, "type": kind}})
            self._json(int(mode), error, {"retry-after-ms": "10"})
            return
        if mode.startswith("drip"):
            self._drip(mode, delay or 0.5)
            return
        if mode == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if mode == "malformed":
            self._json(200, b'{"id": "msg_x", "content": [' if anthropic else b'{"id": "x", "choices": [')
            return
        messages = _anthropic_messages(body) if anthropic else body.get("messages", [])
        route = decide(messages)
        if mode == "alternate":  # the same request gets SERVE and ABSTAIN in turn
            key = json.dumps(messages, sort_keys=True)
            with STATE.lock:
                count = STATE.answers.get(key, 0) + 1
                if generation == STATE.generation:  # a request from before the last reset counts nowhere
                    STATE.answers[key] = count
            route = "SERVE" if count % 2 else "ABSTAIN"
        content = "I cannot tell." if mode == "unreadable" else reply_text(messages, route)
        if mode == "echo":  # a route that is neither SERVE nor ABSTAIN and quotes the request (a privacy probe)
            content = json.dumps({"route": "maybe: " + " ".join(m.get("content", "") for m in messages)})
        words = sum(len(m.get("content", "").split()) for m in messages)
        out, cached = len(content.split()), words // 4
        user = " ".join(m.get("content", "") for m in messages if m.get("role") == "user")
        if anthropic:
            usage: dict[str, Any] = {"input_tokens": words - cached, "cache_read_input_tokens": cached,
                                     "cache_creation_input_tokens": 0, "output_tokens": out}
        else:
            usage = {"prompt_tokens": words, "completion_tokens": out + 3, "total_tokens": words + out + 3,
                     "prompt_tokens_details": {"cached_tokens": cached},
                     "completion_tokens_details": {"reasoning_tokens": 3}}
        with STATE.lock:
            if STATE.usage is not DEFAULT:
                usage = STATE.usage
            if generation == STATE.generation:
                STATE.usages.append({"user": user, "usage": usage})
        if anthropic:
            reply: dict[str, Any] = {
                "id": f"msg_{STATE.requests}", "type": "message", "role": "assistant",
                "model": body.get("model", "local"),
                "content": [] if mode == "no_text" else [{"type": "text", "text": content}],
                "stop_reason": "end_turn", "stop_sequence": None,
                **({} if usage is None else {"usage": usage}),
            }
        else:
            reply = {
                "id": f"chatcmpl-{STATE.requests}", "object": "chat.completion", "created": 0,
                "model": body.get("model", "local"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content} if mode != "no_text" else
                             {"role": "assistant", "content": None, "refusal": "I can't help with that."}}],
                **({} if usage is None else {"usage": usage}),
            }
        if mode in ("gzip_chunked", "big"):
            # gzip_chunked: as a server behind a compressing proxy: gzip, in chunks, no Content-Length;
            # big: a reply of 1 MB (the JSON and spaces) in chunks of 64 kB, no Content-Length
            data = gzip.compress(json.dumps(reply).encode()) if mode == "gzip_chunked" else (
                json.dumps(reply).encode().ljust(1024 * 1024))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if mode == "gzip_chunked":
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            size = len(data) // 2 if mode == "gzip_chunked" else 64 * 1024
            for chunk in [data[start:start + size] for start in range(0, len(data), size)] + [b""]:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            return
        self._json(200, reply)
        if mode == "close_idle":  # as a server whose keep-alive timeout is shorter than the client's pause
            self.close_connection = True  # a kept-alive connection, closed without "Connection: close"
            self.connection.shutdown(socket.SHUT_RDWR)


    def _drip(self, mode: str, interval: float) -> None:
        """A reply that never ends, one byte every ``interval`` seconds, until the client goes away: ``drip``
        after headers that announce 100 MB, ``drip_chunked`` in chunks of one byte with no length, ``drip_headers``
        while still sending the headers."""
        self.close_connection = True
        try:
            if mode == "drip_headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if mode == "drip":
                    self.send_header("Content-Length", str(100 * 1024 * 1024))
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
            self.wfile.flush()
            while True:
                time.sleep(interval)
                self.wfile.write(b"1\r\n \r\n" if mode == "drip_chunked" else b" " if mode == "drip" else b"a")
                self.wfile.flush()
        except OSError:
            return  # the client gave up


#: Error replies by mode: (the error's type, its message).
ERRORS = {"401": ("authentication_error", "invalid x-api-key"), "429": ("rate_limit_error", "rate limited"),
          "500": ("api_error", "server error")}


def _anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _anthropic_problem(body: dict[str, Any], headers: Any) -> str | None:
    """What the real Messages API would refuse in this request (None: nothing)."""
    if not (headers.get("x-api-key") or headers.get("authorization")) or not headers.get("anthropic-version"):
        return "an API key (x-api-key or Authorization) and an anthropic-version header are required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    if not body.get("model") or not body.get("messages"):
        return "model and messages are required"
    return None


def _anthropic_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's system prompt and messages, as chat messages with text content (for ``decide``)."""
    def text(content: Any) -> str:
        if isinstance(content, str):
            return content
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))

    system = body.get("system")
    found = [{"role": "system", "content": text(system)}] if system else []
    return found + [{"role": m.get("role"), "content": text(m.get("content", ""))} for m in body.get("messages", [])]


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:  # a process whose parent is gone is adopted by another
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="end when the process that started it is gone (the tests' server outlives no test run)")
    args = parser.parse_args()
    if args.exit_with_parent:
        threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    ThreadingHTTPServer.request_queue_size = 256  # 64 clients connecting at once (benchmark g) must not wait for SYN retries
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.port_file:
        args.port_file.write_text(str(server.server_address[1]))
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
