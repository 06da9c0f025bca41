"""`serve` under hostile and heavy use (issue 14 items 1-4, 12), driven with raw sockets on loopback.

Real llama.cpp on the real SmolLM2 model; each test names the failure it guards against.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from edge_assistant.hashing import sha256_file
from edge_assistant.errors import UsageError
from edge_assistant.runtime.engine import LlamaEngine
from edge_assistant.sampling import SamplingParams
from edge_assistant.server.http import make_server
from edge_assistant.server.limits import Limits
from edge_assistant.server.protocol import MAX_MESSAGES
from tests.integration.servekit import RecordingAssistant, running_server, wait_for
from tests.support.rawhttp import chat, exchange, request

pytestmark = pytest.mark.real_model

KEY = "test-key-0123456789abcdef"
LIMITS = Limits(queue=2, max_connections=48, header_timeout_s=1.0, body_timeout_s=1.0, max_body_bytes=64 << 10)
HI = {"model": "none", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


@pytest.fixture(scope="module")
def engine(smollm2_gguf):
    engine = LlamaEngine(smollm2_gguf, base_sha256=sha256_file(smollm2_gguf), threads=1, context_length=1024)
    yield engine
    engine.close()


@pytest.fixture()
def assistant(engine):
    return RecordingAssistant(engine, None, "test-bundle")


@pytest.fixture()
def server(assistant):
    with running_server(assistant, limits=LIMITS) as srv:
        yield srv


def address(server) -> tuple[str, int]:
    return server.server_address[:2]


# -- item 1: a refused request's body is never run as a second request ----------------------------


@pytest.mark.parametrize("outer_headers, status", [
    ({"Content-Type": "text/plain"}, 400),                      # a browser's "simple" cross-origin POST
    ({"Content-Type": "application/json", "Host": "evil.example"}, 403),  # DNS rebinding
])
def test_a_request_hidden_in_a_refused_body_is_not_run(server, assistant, outer_headers, status):
    hidden = chat(HI)
    outer = request("POST", "/v1/chat/completions", hidden, outer_headers)
    result = exchange(address(server), outer, timeout_s=20)
    assert [r.status for r in result.responses] == [status], result
    assert result.responses[0].error()
    assert result.closed and not result.reset
    assert assistant.generations == []  # the smuggled request never reached the model


def test_a_refused_request_followed_by_a_pipelined_one_on_the_same_connection_gets_one_answer(server, assistant):
    refused = request("POST", "/v1/chat/completions", b'{"messages": []}', {"Content-Type": "text/plain"})
    result = exchange(address(server), refused + chat(HI), timeout_s=20)
    assert [r.status for r in result.responses] == [400] and result.closed
    assert assistant.generations == []


# -- item 2: under load every request completes or gets a clean 429 ----------------------------------


def test_forty_concurrent_streaming_clients_each_complete_or_get_a_429_never_a_reset(server):
    host, port = address(server)
    body = json.dumps({**HI, "stream": True, "max_tokens": 8})
    start = threading.Barrier(40)
    outcomes: list[tuple] = []

    def client() -> None:
        start.wait()
        try:
            conn = http.client.HTTPConnection(host, port, timeout=120)
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            outcomes.append((response.status, response.getheader("Retry-After"), response.read()))
        except OSError as exc:
            outcomes.append(("error", type(exc).__name__, b""))

    threads = [threading.Thread(target=client) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    statuses = [o[0] for o in outcomes]
    assert len(outcomes) == 40 and set(statuses) <= {200, 429}, statuses
    assert 200 in statuses and 429 in statuses
    for status, retry_after, raw in outcomes:
        if status == 200:
            assert raw.rstrip().endswith(b"data: [DONE]")
        else:
            error = json.loads(raw)["error"]
            assert retry_after.isdigit() and int(retry_after) >= 1
            assert error["code"] == "rate_limit_exceeded" and "busy" in error["message"]
    health = exchange(address(server), request("GET", "/health"), method="GET", timeout_s=2)
    assert health.responses[0].status == 200
    assert json.loads(health.responses[0].body)["queue"]["waiting"] == 0


def test_idle_and_slow_connections_are_closed_by_the_server(server):
    idle = [socket.create_connection(address(server), timeout=10) for _ in range(8)]
    slow = exchange(address(server), b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0", timeout_s=10)
    stalled_body = exchange(address(server), chat(HI)[:-5], timeout_s=10)
    try:
        assert [s.recv(1) for s in idle] == [b""] * 8  # closed (EOF), not held forever
    finally:
        for s in idle:
            s.close()
    assert [r.status for r in slow.responses] == [408] and slow.closed
    assert "request head" in slow.responses[0].error()["message"]
    assert [r.status for r in stalled_body.responses] == [408] and stalled_body.closed


def test_connections_past_the_cap_get_a_503_and_the_server_recovers(server):
    held = [socket.create_connection(address(server), timeout=10) for _ in range(LIMITS.max_connections)]
    try:
        assert wait_for(lambda: len(server._server.server_state.connections) >= LIMITS.max_connections, 5)
        over = exchange(address(server), request("GET", "/health"), method="GET", timeout_s=5)
        assert [r.status for r in over.responses] == [503] and over.closed
        assert over.responses[0].error()["code"] == "too_many_connections"
    finally:
        for s in held:
            s.close()
    assert wait_for(lambda: exchange(address(server), request("GET", "/health"), method="GET",
                                     timeout_s=5).responses[0].status == 200, 10)


def test_a_non_streaming_client_that_hangs_up_stops_its_generation(server, assistant, capfd):
    sock = socket.create_connection(address(server), timeout=30)
    sock.sendall(chat({"model": "none", "max_tokens": 300, "messages": [
        {"role": "user", "content": "Count from one to five hundred in words."}]}))
    assert wait_for(lambda: assistant.generations and assistant.generations[0].result.completion_tokens > 2, 60)
    sock.close()  # hang up while it is generating
    abandoned = assistant.generations[0]
    assert wait_for(lambda: abandoned.result.finish_reason == "cancelled", 60), abandoned.result
    assert abandoned.result.completion_tokens < 300
    reply = exchange(address(server), chat(HI), timeout_s=60)
    assert reply.responses[0].status == 200
    assert any("generation cancelled" in line for line in server.test_log)
    assert "Traceback" not in capfd.readouterr().err


# -- item 3: beyond loopback only with an API key; the key is checked on every request --------------


def test_binding_beyond_loopback_without_a_key_is_refused_in_one_line(edge_home):
    env = {k: v for k, v in os.environ.items() if k != "EDGE_ASSISTANT_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "edge_assistant.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--api-key" in lines[0] and "EDGE_ASSISTANT_API_KEY" in lines[0], proc.stderr
    short = subprocess.run([sys.executable, "-m", "edge_assistant.cli", "serve", "--host", "0.0.0.0"],
                           capture_output=True, text=True, env={**env, "EDGE_ASSISTANT_API_KEY": "short"},
                           timeout=120)
    assert short.returncode == 2 and "at least 16" in short.stderr and "Traceback" not in short.stderr


def test_make_server_refuses_a_public_address_without_a_key(assistant):
    with pytest.raises(UsageError, match="API key"):
        make_server(assistant, "0.0.0.0", 0, SamplingParams())


def test_with_a_key_every_route_requires_it(assistant):
    with running_server(assistant, limits=LIMITS, api_key=KEY) as srv:
        for raw, method in ((request("GET", "/health"), "GET"), (request("GET", "/v1/models"), "GET"),
                            (chat(HI), "POST")):
            for auth in ({}, {"Authorization": "Bearer wrong-key-0123456789abc"}, {"Authorization": KEY}):
                raw_with = raw.replace(b"\r\n\r\n", b"".join(f"\r\n{k}: {v}".encode() for k, v in auth.items())
                                       + b"\r\n\r\n", 1)
                result = exchange(address(srv), raw_with, method=method, timeout_s=20)
                assert [r.status for r in result.responses] == [401], (raw[:40], auth)
                assert result.responses[0].error()["code"] == "invalid_api_key"
        assert assistant.generations == []
        openai = pytest.importorskip("openai")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{address(srv)[1]}/v1", api_key=KEY, max_retries=0)
        reply = client.chat.completions.create(model="none", messages=HI["messages"], max_tokens=2)
        assert reply.usage.completion_tokens == 2


# -- item 4: request size and message count caps ---------------------------------------------------


def test_a_body_over_the_size_cap_gets_413_before_it_is_read(server, assistant):
    declared = request("POST", "/v1/chat/completions", b"", {"Content-Type": "application/json",
                                                               "Content-Length": str(10 << 20)})
    result = exchange(address(server), declared, timeout_s=10)
    assert [r.status for r in result.responses] == [413] and result.closed
    assert "KiB limit" in result.responses[0].error()["message"]
    big = chat({**HI, "messages": [{"role": "user", "content": "x" * (LIMITS.max_body_bytes + 10)}]})
    assert [r.status for r in exchange(address(server), big, timeout_s=10).responses] == [413]
    chunked = request("POST", "/v1/chat/completions", b"".join(
        f"{0x4000:x}\r\n".encode() + b"y" * 0x4000 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n",
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert [r.status for r in exchange(address(server), chunked, timeout_s=10).responses] == [413]
    assert assistant.generations == []


def test_too_many_messages_get_a_400_that_names_the_limit(server, assistant):
    body = {**HI, "messages": [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)}
    result = exchange(address(server), chat(body), timeout_s=10)
    assert [r.status for r in result.responses] == [400]
    assert str(MAX_MESSAGES) in result.responses[0].error()["message"]
    assert assistant.generations == []


# -- item 12: fields the server cannot honour are refused, typed fields must have their type ------------


@pytest.mark.parametrize("extra, param", [
    ({"stream": "false"}, "stream"),
    ({"stream": 1}, "stream"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "response_format"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"n": 2}, "n"),
    ({"n": True}, "n"),
])
def test_fields_the_server_cannot_honour_get_a_400_that_names_them(server, assistant, extra, param):
    result = exchange(address(server), chat({**HI, **extra}), timeout_s=20)
    assert [r.status for r in result.responses] == [400], result
    error = result.responses[0].error()
    assert error["param"] == param and param in error["message"]
    assert assistant.generations == []


def test_the_off_values_of_those_fields_are_accepted(server):
    body = {**HI, "stream": False, "tools": [], "tool_choice": "none", "logprobs": False, "n": 1,
            "response_format": {"type": "text"}}
    result = exchange(address(server), chat(body), timeout_s=60)
    assert [r.status for r in result.responses] == [200]
    assert json.loads(result.responses[0].body)["object"] == "chat.completion"  # stream: false did not stream


# -- shutdown: a reply in flight is ended with a clear answer, not cut off ------------------------------


def test_shutdown_ends_a_reply_in_flight_with_a_503_that_says_so(assistant):
    with running_server(assistant, limits=LIMITS) as srv:
        sock = socket.create_connection(address(srv), timeout=60)
        sock.sendall(chat({"model": "none", "max_tokens": 300, "messages": [
            {"role": "user", "content": "Count from one to five hundred in words."}]}))
        assert wait_for(lambda: assistant.generations and assistant.generations[0].result.completion_tokens > 2, 60)
        srv.shutdown()
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        sock.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), received[:300]
    assert json.loads(body)["error"]["code"] == "shutting_down"
    assert assistant.generations[0].result.finish_reason == "cancelled"
