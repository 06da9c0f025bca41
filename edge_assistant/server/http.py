"""The HTTP server: /v1/chat/completions (JSON or server-sent events), /v1/models, /health.

Requests are handled on threads, generation is serialised by the engine's lock;
a client that disconnects mid-stream cancels its generation.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from ..errors import EdgeAssistantError, ModifierError, TemplateError, UsageError
from ..runtime.assistant import Assistant
from ..runtime.generation import SamplingParams
from .protocol import (RequestError, chunk_body, completion_body, completion_id, openai_finish,
                       parse_chat_request, route_extension)
from .stops import StopScanner

MAX_BODY = 8 << 20


class _Handler(BaseHTTPRequestHandler):
    server: "AssistantServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        self.server.log(f"{self.address_string()} {format % args}")

    # -- plumbing -------------------------------------------------------------------

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "param": param, "code": None}})

    def _read_json(self) -> Any:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            # Also keeps web pages out: a browser cannot send application/json cross-origin
            # without a preflight, which this server never answers.
            raise RequestError("the request body must be sent as Content-Type: application/json")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None or not raw_length.strip().isdigit():
            raise RequestError("a Content-Length header with the body's size in bytes is required")
        length = int(raw_length)
        if length > MAX_BODY:
            raise RequestError(f"request body over {MAX_BODY >> 20} MiB")
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"the request body is not valid JSON ({exc})") from exc

    # -- routes ---------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self._host_allowed():
            self._error(403, "this server only answers requests addressed to localhost", "forbidden")
        elif self.path.rstrip("/") in ("/health", ""):
            self._send_json(200, {"status": "ok", "bundle": self.server.assistant.bundle_name})
        elif self.path.rstrip("/") == "/v1/models":
            names = ["auto", "none", *self.server.assistant.engine.modifier_names]
            self._send_json(200, {"object": "list", "data": [
                {"id": n, "object": "model", "created": 0, "owned_by": "edge-assistant"} for n in names]})
        else:
            self._error(404, f"no route {self.path}: use /v1/chat/completions or /v1/models", "not_found")

    def _host_allowed(self) -> bool:
        """On loopback, answer only requests addressed to loopback (no DNS rebinding)."""
        if not self.server.loopback_only:
            return True
        host = (self.headers.get("Host") or "").strip()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.find("]")]
        return name in ("localhost", "") or is_loopback(name)

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_allowed():
            self._error(403, "this server only answers requests addressed to localhost", "forbidden")
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}: use /v1/chat/completions", "not_found")
            return
        try:
            request = parse_chat_request(self._read_json(), tuple(self.server.assistant.engine.modifier_names),
                                         self.server.defaults)
        except RequestError as exc:
            self._error(400, str(exc), param=exc.param)
            return
        assistant = self.server.assistant
        try:
            decision, generation = assistant.reply(request.messages, override=request.override,
                                                   sampling=request.sampling)
            if request.stream:
                self._stream(request, decision, generation)
            else:
                self._complete(request, decision, generation)
        except EdgeAssistantError as exc:
            client_fault = isinstance(exc, (TemplateError, ModifierError, UsageError))
            self._error(400 if client_fault else 500, str(exc),
                        "invalid_request_error" if client_fault else "server_error")

    def _complete(self, request: Any, decision: Any, generation: Any) -> None:
        scanner = StopScanner(request.stop)
        parts = []
        for piece in generation:
            parts.append(scanner.feed(piece))
            if scanner.stopped:
                generation.close()
                break
        parts.append(scanner.flush())
        result = generation.result
        finish = "stop" if scanner.stopped else openai_finish(result.finish_reason)
        self._send_json(200, completion_body(completion_id(), request.model, "".join(parts), finish, result,
                                             decision))

    def _stream(self, request: Any, decision: Any, generation: Any) -> None:
        cid = completion_id()

        def event(body: Any) -> None:
            payload = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
            self.wfile.write(f"data: {payload}\n\n".encode("utf-8"))
            self.wfile.flush()

        # Reading the first piece renders and evaluates the prompt: a bad conversation fails
        # here, while a plain HTTP error can still be sent instead of an event stream.
        first_piece = next(generation, None)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        scanner = StopScanner(request.stop)
        try:
            first = chunk_body(cid, request.model, {"role": "assistant", "content": ""}, None)
            first["x_edge_assistant"] = route_extension(decision, None)
            event(first)
            for piece in itertools.chain([first_piece] if first_piece is not None else [], generation):
                text = scanner.feed(piece)
                if text:
                    event(chunk_body(cid, request.model, {"content": text}, None))
                if scanner.stopped:
                    generation.close()
                    break
            tail = scanner.flush()
            if tail:
                event(chunk_body(cid, request.model, {"content": tail}, None))
            result = generation.result
            finish = "stop" if scanner.stopped else openai_finish(result.finish_reason)
            last = chunk_body(cid, request.model, {}, finish)
            last["usage"] = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                             "total_tokens": result.prompt_tokens + result.completion_tokens}
            last["x_edge_assistant"] = route_extension(decision, result)
            event(last)
            event("[DONE]")
        except EdgeAssistantError as exc:
            # Headers are gone: report in-band, the way OpenAI streams report errors.
            event({"error": {"message": str(exc), "type": "server_error", "param": None, "code": None}})
            event("[DONE]")
        except (BrokenPipeError, ConnectionResetError):
            self.server.log("client disconnected; generation cancelled")
            generation.close()  # the client went away: stop generating for nobody


class AssistantServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, assistant: Assistant, host: str, port: int, defaults: SamplingParams,
                 log: Callable[[str], None] | None = None) -> None:
        self.assistant = assistant
        self.defaults = defaults
        self.loopback_only = is_loopback(host)
        self._log = log
        super().__init__((host, port), _Handler)

    def log(self, line: str) -> None:
        if self._log:
            self._log(line)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(assistant: Assistant, host: str = "127.0.0.1", port: int = 8080,
                defaults: SamplingParams = SamplingParams(), log: Callable[[str], None] | None = None
                ) -> AssistantServer:
    """Bind (port 0 picks a free port: see ``server.server_address``); call ``serve_forever()``."""
    try:
        return AssistantServer(assistant, host, port, defaults, log)
    except OSError as exc:
        raise EdgeAssistantError(f"cannot listen on {host}:{port} ({exc.strerror})",
                                 hint="pick another --port, or stop the program using it") from exc


def _stderr_log(line: str) -> None:
    print(f"edge-assistant serve: {line}", file=sys.stderr)
