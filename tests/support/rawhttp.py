"""Raw-socket HTTP for server tests: send exact bytes, read back every response on the connection.

The responses are parsed by the standard library's ``http.client.HTTPResponse`` (so a
malformed response fails the parse), one after another on the same connection, until
the server closes it, a response says it will close, or ``timeout_s`` passes.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        """The OpenAI-shaped error object (fails the test if the body is not one)."""
        payload = json.loads(self.body)
        error = payload["error"]
        assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str), payload
        return error


@dataclass
class Exchange:
    responses: list[Response] = field(default_factory=list)
    closed: bool = False       # the server closed the connection (clean FIN)
    reset: bool = False        # the connection was reset
    timed_out: bool = False    # nothing more arrived within the timeout, connection still open
    parse_error: str = ""      # bytes arrived that are not an HTTP response


class _Shared(io.RawIOBase):
    """One buffered reader shared by successive HTTPResponse objects (they close what they get)."""

    def __init__(self, reader: io.BufferedReader) -> None:
        self._reader = reader

    def makefile(self, mode: str) -> "_Shared":
        return self

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._reader.read(n)

    def read1(self, n: int = -1) -> bytes:
        return self._reader.read1(n)

    def readline(self, limit: int = -1) -> bytes:
        return self._reader.readline(limit)

    def readinto(self, b: Any) -> int:
        return self._reader.readinto(b)

    def peek(self, n: int = 0) -> bytes:
        return self._reader.peek(n)

    def close(self) -> None:  # the connection stays ours
        pass


def exchange(address: tuple[str, int], data: bytes | list[bytes], *, timeout_s: float = 10.0,
             method: str = "POST", pause_s: float = 0.0, max_responses: int | None = None) -> Exchange:
    """Send ``data`` (a list: sent piece by piece, ``pause_s`` apart) and collect the responses
    (all of them, until the connection closes, or only the first ``max_responses``)."""
    import time

    out = Exchange()
    sock = socket.create_connection(address, timeout=timeout_s)
    try:
        pieces = data if isinstance(data, list) else [data]
        try:
            for index, piece in enumerate(pieces):
                if index and pause_s:
                    time.sleep(pause_s)
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything: read what it said
        shared = _Shared(sock.makefile("rb"))
        while True:
            response = http.client.HTTPResponse(shared, method=method)  # type: ignore[arg-type]
            try:
                response.begin()
                body = response.read()
            except http.client.RemoteDisconnected:
                out.closed = True
                break
            except (socket.timeout, TimeoutError):
                out.timed_out = True
                break
            except ConnectionResetError:
                out.reset = True
                break
            except (http.client.HTTPException, ValueError) as exc:
                out.parse_error = f"{type(exc).__name__}: {exc}"
                break
            out.responses.append(Response(response.status, {k.lower(): v for k, v in response.getheaders()}, body))
            if max_responses is not None and len(out.responses) >= max_responses:
                break
            if response.will_close:
                try:
                    out.closed = sock.recv(1) == b""
                except (socket.timeout, TimeoutError):
                    out.timed_out = True
                except ConnectionResetError:
                    out.reset = True
                break
    finally:
        sock.close()
    return out


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """Bytes of one HTTP/1.1 request; Host and Content-Length are added unless given."""
    given = {k.lower() for k in (headers or {})}
    lines = [f"{method} {path} HTTP/1.1"]
    if "host" not in given:
        lines.append("Host: 127.0.0.1")
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if "content-length" not in given and "transfer-encoding" not in given and (body or method == "POST"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chat(body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request("POST", "/v1/chat/completions", raw, {"Content-Type": "application/json", **(headers or {})})
