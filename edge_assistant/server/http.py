"""Hosting the ASGI app on uvicorn: the socket, per-connection guards, logging, start and stop.

uvicorn (with h11) owns HTTP framing, so a request body is always consumed as that
request's body and never parsed as another request. On top of uvicorn's keep-alive
timeout, each connection gets a deadline for its request head (slow or silent clients
are closed) and connections past ``Limits.max_connections`` get a 503 and are closed.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from typing import Any, Callable

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import EdgeAssistantError
from ..runtime.assistant import Assistant
from ..sampling import SamplingParams
from .app import AssistantApp, error_json
from .limits import Limits, check_api_key, is_loopback

__all__ = ["AssistantServer", "make_server", "is_loopback"]

Log = Callable[[str], None]


async def _over_capacity(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = error_json("too many open connections to this server: retry shortly", "server_error",
                      code="too_many_connections")
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"Content-Type", b"application/json"), (b"Content-Length", str(len(body)).encode()),
        (b"Retry-After", b"1"), (b"Connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _GuardedH11(H11Protocol):
    """uvicorn's h11 protocol plus a request-head deadline, a connection cap and JSON framing errors."""

    limits: Limits = Limits()
    on_shutdown: Callable[[], None] = staticmethod(lambda: None)

    def shutdown(self) -> None:
        self.on_shutdown()  # end in-flight replies now (their clients are told), not at the grace deadline
        super().shutdown()

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: Any = None
        if len(self.connections) > self.limits.max_connections:
            self.app = _over_capacity  # answered on its first request, then closed
        self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        if getattr(self, "_head_deadline", None) is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or not (self.cycle is None or self.cycle.response_complete):
            return  # closed already, or a request head did arrive
        if self.conn.trailing_data[0]:  # part of a request head: say why before closing
            self._answer_and_close(408, "Request Timeout", error_json(
                f"the request head did not arrive within {self.limits.header_timeout_s:g} s", "invalid_request_error"))
        else:  # an idle connection: just close it
            self.timeout_keep_alive_handler()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request head arrived
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        self._arm_head_deadline()  # the next request on this connection must come in time too
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        # h11 refused the request line, headers or framing: answer in the API's error shape.
        self._answer_and_close(400, "Bad Request", error_json(
            "malformed HTTP request: check the request line, the headers, Content-Length and Transfer-Encoding",
            "invalid_request_error"))

    def _answer_and_close(self, status: int, reason: str, body: bytes) -> None:
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode("ascii")
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:  # else one is under way
            self.transport.write(head + body)
        self.transport.close()


class _LogLines(logging.Handler):
    """uvicorn's own warnings and errors as one line each through our log (never a traceback)."""

    def __init__(self, log: Log | None) -> None:
        super().__init__(logging.WARNING)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        if self._log:
            try:
                self._log(record.getMessage().splitlines()[0])
            except Exception:  # noqa: BLE001 - logging must never take the server down
                pass


class AssistantServer:
    """Bound on construction (``server_address`` is known, port 0 picks a free one);
    ``serve_forever()`` blocks; ``shutdown()`` (from another thread) stops it."""

    def __init__(self, assistant: Assistant, host: str, port: int, defaults: SamplingParams, limits: Limits,
                 api_key: str | None, log: Log | None) -> None:
        self.assistant = assistant
        self.limits = limits
        api_key = check_api_key(api_key, loopback=is_loopback(host), host=host)
        self.app = AssistantApp(assistant, defaults, limits, loopback_only=is_loopback(host), api_key=api_key,
                                log=log)
        self._log = log
        self._socket = _bind(host, port)
        self.server_address = self._socket.getsockname()
        protocol = type("GuardedH11", (_GuardedH11,), {"limits": limits,
                                                       "on_shutdown": staticmethod(self.app.cancel_all)})
        self._config = uvicorn.Config(
            self.app, http=protocol, ws="none", lifespan="off", interface="asgi3", log_config=None,
            access_log=False, server_header=False, proxy_headers=False, timeout_keep_alive=max(1, round(limits.keep_alive_s)),
            timeout_graceful_shutdown=max(1, round(limits.graceful_shutdown_s)), backlog=2048)
        self._server = uvicorn.Server(self._config)
        self._stopped = threading.Event()

    def log(self, line: str) -> None:
        if self._log:
            self._log(line)

    def serve_forever(self) -> None:
        handler = _LogLines(self._log)
        uvicorn_log = logging.getLogger("uvicorn")
        uvicorn_log.addHandler(handler)
        uvicorn_log.propagate = False
        self._stopped.clear()
        try:
            self._server.run(sockets=[self._socket])
        finally:
            uvicorn_log.removeHandler(handler)
            self._stopped.set()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        self.app.cancel_all()
        self._server.should_exit = True
        self._stopped.wait(timeout_s)

    def server_close(self) -> None:
        self._socket.close()


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise EdgeAssistantError(f"cannot listen on {host}:{port} ({exc.strerror})",
                                 hint="pass --host an address of this machine, such as 127.0.0.1") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        raise EdgeAssistantError(f"cannot listen on {host}:{port} ({exc.strerror})",
                                 hint="pick another --port, or stop the program using it") from exc
    return sock


def make_server(assistant: Assistant, host: str = "127.0.0.1", port: int = 8080,
                defaults: SamplingParams = SamplingParams(), log: Log | None = None, *,
                limits: Limits = Limits(), api_key: str | None = None) -> AssistantServer:
    """Bind (port 0 picks a free port: see ``server.server_address``); call ``serve_forever()``.

    ``api_key`` is required on every request when given; binding beyond loopback without
    one is refused (``limits.check_api_key``).
    """
    return AssistantServer(assistant, host, port, defaults, limits, api_key, log)


def _stderr_log(line: str) -> None:
    print(f"edge-assistant serve: {line}", file=sys.stderr)
