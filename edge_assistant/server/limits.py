"""How much the server accepts and how long it waits: one place for every bound `serve` enforces."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import UsageError

API_KEY_ENV = "EDGE_ASSISTANT_API_KEY"
MIN_API_KEY_LENGTH = 16


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 2 << 20      # a larger request body gets 413
    queue: int = 16                    # requests that may wait behind the one generating; more get 429
    max_connections: int = 64          # open sockets; further connections get 503 and are closed
    header_timeout_s: float = 10.0     # from connect (or the last response) to a complete request head
    body_timeout_s: float = 30.0       # from the request head to the end of its body: 408 after
    keep_alive_s: float = 5.0          # an idle kept-alive connection is closed after this
    write_timeout_s: float = 60.0      # a client that stops reading for this long is dropped
    graceful_shutdown_s: float = 3.0   # on Ctrl-C, in-flight replies get this long to finish

    def __post_init__(self) -> None:
        if self.queue < 0:
            raise UsageError("--queue must be 0 or more", hint="0 answers one request at a time and 429s the rest")
        if self.max_connections < 1:
            raise UsageError("--max-connections must be at least 1")


def check_api_key(key: str | None, *, loopback: bool, host: str) -> str | None:
    """The key to require on every request (None: no authentication), or a UsageError saying why not."""
    key = key or None
    if key is None:
        if not loopback:
            raise UsageError(f"refusing to listen on {host} without an API key: anyone who can reach it could use it",
                             hint=f"pass --api-key or set {API_KEY_ENV} (for example to the output of "
                                  "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`), "
                                  "or listen on 127.0.0.1")
        return None
    if len(key) < MIN_API_KEY_LENGTH or not key.isascii() or not key.isprintable() or " " in key:
        raise UsageError(f"the API key must be at least {MIN_API_KEY_LENGTH} printable ASCII characters without spaces",
                         hint="generate one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    return key


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
