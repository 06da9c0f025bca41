"""Loopback-only networking for a child process (put this folder first on PYTHONPATH).

Python imports ``sitecustomize`` at start-up, before any of our code, so every
later import sees the guarded socket functions. A connection or name lookup that
would leave the machine raises ``ConnectionRefusedError`` and, when
``EDGE_NETGUARD_LOG`` names a file, appends a line to it: a test can then fail
on an attempt even where the code under test caught the error.
"""

from __future__ import annotations

import ipaddress
import os
import socket

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback_host(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> None:
    log = os.environ.get("EDGE_NETGUARD_LOG")
    if log:
        os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {what}\n")
    raise ConnectionRefusedError(f"netguard: {what} refused (only loopback is allowed in this process)")


def _guard(sock: socket.socket, address: object) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0] if isinstance(address, tuple) and address else address
        if not _is_loopback_host(host):
            _refuse(f"connect to {address!r}")


def _connect(self: socket.socket, address: object) -> None:
    _guard(self, address)
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: object) -> int:
    _guard(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    # A name lookup for anything but loopback would already send a DNS query.
    if host is not None and not _is_loopback_host(host):
        _refuse(f"name lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _connect  # type: ignore[method-assign]
socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _getaddrinfo
