"""The ASGI app behind `serve`: routes, checks, the request queue, and generation on a worker thread.

HTTP framing, keep-alive and parsing are uvicorn's (see ``http.py``). Here:

- every request is checked in order: Host (loopback only: no DNS rebinding), API key
  (constant-time compare), route, Content-Type (a web page cannot send JSON
  cross-origin without a preflight), size, then the JSON itself. A refusal before the
  body is read drains the body (within the size cap) and closes the connection, so a
  body can never be taken for a second request;
- one generation runs at a time (the engine is single-stream); up to ``Limits.queue``
  requests wait in arrival order and any more get a 429 with ``Retry-After``;
- the generation runs on its own thread and hands text to the event loop; a client that
  hangs up, streaming or not, cancels its generation (or leaves the queue).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import threading
import time
from typing import Any, Awaitable, Callable

from ..document import loads_json
from ..errors import EdgeAssistantError, ModifierError, TemplateError, UsageError
from ..modifier_names import AUTO, BASE
from ..runtime.assistant import Assistant
from ..sampling import SamplingParams
from .limits import Limits, is_loopback
from .protocol import (ChatRequest, RequestError, chunk_body, completion_body, completion_id, openai_finish,
                       parse_chat_request, route_extension)
from .stops import StopScanner

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Log = Callable[[str], None]

CHAT_PATH = "/v1/chat/completions"


class HttpError(Exception):
    """An answer other than success, in OpenAI's error shape."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", *, param: str | None = None,
                 code: str | None = None, headers: tuple[tuple[bytes, bytes], ...] = (), drain: bool = True) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code
        self.headers = headers
        self.drain = drain  # False: the body is too big or too slow to read before answering


def error_json(message: str, kind: str, param: str | None = None, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}},
                      ensure_ascii=False).encode("utf-8")


class _ClientGone(Exception):
    """The client hung up before its answer could be sent."""


class _Exchange:
    """One request's headers and its response, with whether the response has started."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, write_timeout_s: float) -> None:
        self.scope, self.receive, self._send = scope, receive, send
        self.method: str = scope.get("method", "GET")
        self.path: str = scope.get("path", "/")
        self.headers: dict[str, list[str]] = {}
        for name, value in scope.get("headers", []):
            self.headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        self.started = False
        self.status = 0
        self.body_read = False
        self._write_timeout_s = write_timeout_s

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise HttpError(400, f"more than one {name} header", headers=((b"Connection", b"close"),))
        return values[0].strip()

    async def send(self, message: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(self._send(message), self._write_timeout_s)
        except asyncio.TimeoutError:
            raise _ClientGone(f"the client read nothing for {self._write_timeout_s:g} s") from None

    async def start(self, status: int, content_type: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.started, self.status = True, status
        await self.send({"type": "http.response.start", "status": status,
                         "headers": [(b"Content-Type", content_type), *extra]})

    async def body(self, data: bytes, more: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(self, status: int, payload: Any, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        await self.start(status, b"application/json", ((b"Content-Length", str(len(data)).encode()), *extra))
        await self.body(data)


class _Run:
    """One generation on a worker thread; its events reach the event loop through a queue.

    Events: ("route", decision), then ("text", str)..., then ("end", finish, result)
    or ("error", EdgeAssistantError) or ("crash", Exception).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, assistant: Assistant, request: ChatRequest,
                 on_exit: Callable[[float], None]) -> None:
        self.events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._loop, self._assistant, self._request, self._on_exit = loop, assistant, request, on_exit
        self._cancel = threading.Event()
        self._generation: Any = None

    def start(self) -> None:
        threading.Thread(target=self._work, name="edge-assistant-generate", daemon=True).start()

    def cancel(self) -> None:
        self._cancel.set()
        generation = self._generation
        if generation is not None:
            generation.cancel()  # thread-safe: the engine stops between tokens

    def _put(self, *event: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the event loop is gone (shutdown): nobody is listening
            pass

    def _work(self) -> None:
        started = time.perf_counter()
        request = self._request
        try:
            if self._cancel.is_set():
                return
            decision, generation = self._assistant.reply(request.messages, override=request.override,
                                                         sampling=request.sampling)
            self._generation = generation
            if self._cancel.is_set():
                generation.cancel()
            self._put("route", decision)
            scanner = StopScanner(request.stop)
            for piece in generation:
                text = scanner.feed(piece)
                if text:
                    self._put("text", text)
                if scanner.stopped:
                    generation.close()
                    break
            tail = scanner.flush()
            if tail:
                self._put("text", tail)
            result = generation.result
            self._put("end", "stop" if scanner.stopped else openai_finish(result.finish_reason), result)
        except EdgeAssistantError as exc:
            self._put("error", exc)
        except Exception as exc:  # noqa: BLE001 - reported as one line and a 500, never a traceback
            self._put("crash", exc)
        finally:
            elapsed = time.perf_counter() - started
            try:
                self._loop.call_soon_threadsafe(self._on_exit, elapsed)
            except RuntimeError:
                pass


def _rejection(exc: EdgeAssistantError) -> HttpError:
    client_fault = isinstance(exc, (TemplateError, ModifierError, UsageError))
    return HttpError(400 if client_fault else 500, str(exc), "invalid_request_error" if client_fault else "server_error")


class AssistantApp:
    """ASGI 3 app; one per server."""

    def __init__(self, assistant: Assistant, defaults: SamplingParams, limits: Limits, *,
                 loopback_only: bool, api_key: str | None = None, log: Log | None = None) -> None:
        self.assistant, self.defaults, self.limits = assistant, defaults, limits
        self.loopback_only = loopback_only
        self._api_key = api_key.encode("utf-8") if api_key else None
        self._log = log
        self._gate: asyncio.Lock | None = None  # made on the server's event loop
        self._admitted = 0                       # generating + waiting
        self._runs: set[_Run] = set()
        self._typical_s = 2.0                    # moving average of one generation's duration
        self._closing = False                    # shutting down: no new generations

    def log(self, line: str) -> None:
        if self._log:
            self._log(line)

    # -- queue ----------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        return max(0, self._admitted - 1)

    def retry_after_s(self) -> int:
        return max(1, min(600, math.ceil(self._typical_s)))

    def cancel_all(self) -> None:
        """Server shutdown: stop every generation in flight (its client is told so) and start no more."""
        self._closing = True
        for run in list(self._runs):
            run.cancel()

    # -- ASGI -----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            return
        exchange = _Exchange(scope, receive, send, self.limits.write_timeout_s)
        started = time.perf_counter()
        try:
            await self._handle(exchange)
        except HttpError as exc:
            await self._refuse(exchange, exc)
        except _ClientGone as exc:
            self.log(f"{exchange.method} {exchange.path}: client gone ({exc or 'hung up'})")
        except Exception as exc:  # noqa: BLE001 - one line and a 500, never a traceback
            self.log(f"{exchange.method} {exchange.path}: internal error: {type(exc).__name__}: {exc}")
            if not exchange.started:
                await self._refuse(exchange, HttpError(500, f"internal error ({type(exc).__name__})", "server_error"))
        finally:
            if exchange.status:
                self.log(f"{_client(scope)} \"{exchange.method} {exchange.path}\" {exchange.status} "
                         f"{time.perf_counter() - started:.2f}s")

    async def _refuse(self, exchange: _Exchange, exc: HttpError) -> None:
        if exchange.started:
            return
        extra = exc.headers
        if not exchange.body_read:
            # Never leave an unread body on a kept-alive connection: drain what was declared
            # (within the cap, so the client reads this answer instead of a reset), then close.
            if exc.drain:
                await self._drain(exchange)
            if (b"Connection", b"close") not in extra:
                extra = (*extra, (b"Connection", b"close"))
        try:
            await exchange.json(exc.status, error_json(exc.message, exc.kind, exc.param, exc.code), extra)
        except _ClientGone:
            pass

    async def _drain(self, exchange: _Exchange) -> None:
        try:
            declared = exchange.header("content-length")
        except HttpError:
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self.limits.max_body_bytes):
            return
        try:
            await self._read_body(exchange)
        except (HttpError, _ClientGone):
            pass

    async def _handle(self, exchange: _Exchange) -> None:
        self._check_host(exchange)
        self._check_key(exchange)
        path = exchange.path.rstrip("/")
        if path in ("/health", "", "/v1/models"):
            if exchange.method not in ("GET", "HEAD"):
                raise HttpError(405, f"{exchange.path} answers GET only", headers=((b"Allow", b"GET, HEAD"),))
            await self._drain_if_body(exchange)
            await exchange.json(200, self._health() if path != "/v1/models" else self._models())
        elif path == CHAT_PATH:
            if exchange.method != "POST":
                raise HttpError(405, f"{CHAT_PATH} answers POST only", headers=((b"Allow", b"POST"),))
            await self._chat(exchange)
        else:
            raise HttpError(404, f"no route {exchange.path}: use {CHAT_PATH} or /v1/models", "not_found")

    async def _drain_if_body(self, exchange: _Exchange) -> None:
        if exchange.header("content-length") not in (None, "0") or exchange.header("transfer-encoding"):
            raise HttpError(400, f"{exchange.method} {exchange.path} takes no request body")
        exchange.body_read = True

    def _check_host(self, exchange: _Exchange) -> None:
        """On loopback, answer only requests addressed to loopback (no DNS rebinding)."""
        if not self.loopback_only:
            return
        host = exchange.header("host") or ""
        name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
        if not (name in ("localhost", "") or is_loopback(name)):
            raise HttpError(403, "this server only answers requests addressed to localhost", "forbidden")

    def _check_key(self, exchange: _Exchange) -> None:
        if self._api_key is None:
            return
        given = exchange.header("authorization") or ""
        scheme, _, token = given.partition(" ")
        supplied = token.strip().encode("latin-1") if scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(supplied, self._api_key):
            raise HttpError(401, "a valid API key is required: send the header 'Authorization: Bearer <key>'",
                            "invalid_request_error", code="invalid_api_key",
                            headers=((b"WWW-Authenticate", b"Bearer"),))

    def _health(self) -> dict[str, Any]:
        return {"status": "ok", "bundle": self.assistant.bundle_name,
                "queue": {"generating": min(self._admitted, 1), "waiting": self.waiting,
                          "capacity": self.limits.queue}}

    def _models(self) -> dict[str, Any]:
        names = [AUTO, BASE, *self.assistant.engine.modifier_names]   # "none" is accepted too, not listed
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "edge-assistant"}
                                           for n in names]}

    # -- chat completions -----------------------------------------------------------

    async def _read_body(self, exchange: _Exchange) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout_s
        chunks, size = [], 0
        while True:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(exchange.receive(), remaining)
            except asyncio.TimeoutError:
                raise HttpError(408, f"the request body did not arrive within {self.limits.body_timeout_s:g} s",
                                drain=False) from None
            if message["type"] == "http.disconnect":
                raise _ClientGone("hung up while sending the request")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                exchange.body_read = True
                return b"".join(chunks)

    def _too_large(self) -> HttpError:
        return HttpError(413, f"the request body is over the {self.limits.max_body_bytes >> 10} KiB limit: "
                              "send a shorter conversation", param="messages", code="request_too_large", drain=False)

    async def _request(self, exchange: _Exchange) -> ChatRequest:
        kind = (exchange.header("content-type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            # Also keeps web pages out: a browser cannot send application/json cross-origin
            # without a preflight, which this server never answers.
            raise HttpError(400, "the request body must be sent as Content-Type: application/json")
        declared = exchange.header("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            raise self._too_large()
        raw = await self._read_body(exchange)
        try:
            body = loads_json(raw.decode("utf-8") if raw else "null")
        except UnicodeDecodeError as exc:
            raise HttpError(400, f"the request body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        except json.JSONDecodeError as exc:
            raise HttpError(400, f"the request body is not valid JSON ({exc})") from exc
        try:
            return parse_chat_request(body, tuple(self.assistant.engine.modifier_names), self.defaults)
        except RequestError as exc:
            raise HttpError(400, str(exc), param=exc.param) from exc

    async def _chat(self, exchange: _Exchange) -> None:
        request = await self._request(exchange)
        if self._closing:
            raise self._shutting_down()
        if self._admitted > self.limits.queue:
            raise HttpError(429, f"the server is busy: {self.waiting} requests are already waiting; "
                                 f"retry after {self.retry_after_s()} s", "requests", code="rate_limit_exceeded",
                            headers=((b"Retry-After", str(self.retry_after_s()).encode()),))
        if self._gate is None:
            self._gate = asyncio.Lock()
        gate = self._gate
        self._admitted += 1
        gone = asyncio.ensure_future(self._hang_up(exchange))
        run: _Run | None = None
        try:
            acquire = asyncio.ensure_future(gate.acquire())
            await asyncio.wait({acquire, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not acquire.done() or acquire.cancelled():
                acquire.cancel()
                await asyncio.gather(acquire, return_exceptions=True)
                if acquire.done() and not acquire.cancelled():
                    gate.release()
                raise _ClientGone("hung up while waiting in the queue")
            if self._closing:
                gate.release()
                raise self._shutting_down()
            run = _Run(asyncio.get_running_loop(), self.assistant, request, self._finished)
            self._runs.add(run)
            run.start()  # from here the run's thread releases the gate when it ends
            gone.add_done_callback(lambda _: run.cancel() if not gone.cancelled() else None)
            if request.stream:
                await self._stream(exchange, request, run, gone)
            else:
                await self._complete(exchange, request, run, gone)
        finally:
            if run is None:
                self._admitted -= 1
            else:
                self._runs.discard(run)
                run.cancel()  # a no-op after a normal end; stops generating for nobody otherwise
            gone.cancel()

    def _finished(self, elapsed_s: float) -> None:
        self._admitted -= 1
        self._typical_s = 0.8 * self._typical_s + 0.2 * elapsed_s
        if self._gate is not None and self._gate.locked():
            self._gate.release()

    async def _hang_up(self, exchange: _Exchange) -> None:
        """Returns when the client disconnects (the request body has been read by now)."""
        while True:
            message = await exchange.receive()
            if message["type"] == "http.disconnect":
                return

    async def _next(self, run: _Run, gone: asyncio.Future[None]) -> tuple[Any, ...]:
        getter = asyncio.ensure_future(run.events.get())
        await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        self.log("client disconnected; generation cancelled")
        raise _ClientGone("hung up during generation")

    @staticmethod
    def _shutting_down() -> HttpError:
        return HttpError(503, "the server is shutting down: retry once it is back", "server_error",
                         code="shutting_down")

    def _failure(self, event: tuple[Any, ...]) -> HttpError | None:
        if event[0] == "end" and self._closing and event[2].finish_reason == "cancelled":
            return self._shutting_down()  # cut short by shutdown: not a complete answer
        if event[0] == "error":
            return _rejection(event[1])
        if event[0] == "crash":
            exc = event[1]
            return HttpError(500, f"generation failed ({type(exc).__name__}: {exc})", "server_error")
        return None

    async def _complete(self, exchange: _Exchange, request: ChatRequest, run: _Run, gone: asyncio.Future[None]) -> None:
        decision, parts = None, []
        while True:
            event = await self._next(run, gone)
            failure = self._failure(event)
            if failure is not None:
                raise failure
            if event[0] == "route":
                decision = event[1]
            elif event[0] == "text":
                parts.append(event[1])
            else:
                _, finish, result = event
                await exchange.json(200, completion_body(completion_id(), request.model, "".join(parts), finish,
                                                         result, decision))
                return

    async def _stream(self, exchange: _Exchange, request: ChatRequest, run: _Run, gone: asyncio.Future[None]) -> None:
        cid = completion_id()
        event = await self._next(run, gone)
        # The first event after the route renders and evaluates the prompt: a bad conversation
        # fails here, while a plain HTTP error can still be sent instead of an event stream.
        failure = self._failure(event)
        if failure is not None:
            raise failure
        decision = event[1]
        event = await self._next(run, gone)
        failure = self._failure(event)
        if failure is not None:
            raise failure
        await exchange.start(200, b"text/event-stream", ((b"Cache-Control", b"no-cache"),))

        async def emit(payload: Any) -> None:
            text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            await exchange.body(f"data: {text}\n\n".encode("utf-8"), more=True)
            if gone.done():
                self.log("client disconnected; generation cancelled")
                raise _ClientGone("hung up during the stream")

        first = chunk_body(cid, request.model, {"role": "assistant", "content": ""}, None)
        first["x_edge_assistant"] = route_extension(decision, None)
        await emit(first)
        while True:
            failure = self._failure(event)
            if failure is not None:  # headers are gone: report in-band, the way OpenAI streams report errors
                await emit({"error": {"message": failure.message, "type": failure.kind, "param": None,
                                      "code": failure.code}})
                break
            if event[0] == "text":
                await emit(chunk_body(cid, request.model, {"content": event[1]}, None))
            else:
                _, finish, result = event
                last = chunk_body(cid, request.model, {}, finish)
                last["usage"] = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                                 "total_tokens": result.prompt_tokens + result.completion_tokens}
                last["x_edge_assistant"] = route_extension(decision, result)
                await emit(last)
                break
            event = await self._next(run, gone)
        await emit("[DONE]")
        await exchange.body(b"")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"
