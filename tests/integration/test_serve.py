"""The OpenAI-compatible server over real HTTP on loopback, driven by the real `openai` client."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest

from edge_assistant.hashing import sha256_file
from edge_assistant.runtime.assistant import Assistant
from edge_assistant.runtime.engine import LlamaEngine
from edge_assistant.sampling import SamplingParams
from edge_assistant.runtime.modifier import ModifierSpec
from edge_assistant.server.http import make_server
from tests.support.lora import write_random_lora
from tests.support.answers import on_topic_capital_answer

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def server(smollm2_gguf, tmp_path_factory):
    sha = sha256_file(smollm2_gguf)
    adapter = write_random_lora(tmp_path_factory.mktemp("a") / "code.gguf", smollm2_gguf, base_sha256=sha,
                                scale=0.05)
    engine = LlamaEngine(smollm2_gguf, base_sha256=sha, modifiers={"code": ModifierSpec("code", adapter, sha)},
                         threads=1, context_length=1024)
    log: list[str] = []
    srv = make_server(Assistant(engine, None, "test-bundle"), "127.0.0.1", 0,
                      SamplingParams(max_tokens=32, temperature=0.0), log=log.append)
    srv.test_log = log  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    engine.close()


@pytest.fixture()
def client(server):
    openai = pytest.importorskip("openai")
    host, port = server.server_address[:2]
    return openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key="unused", max_retries=0, timeout=120)


def test_the_openai_client_gets_a_chat_completion(client):
    reply = client.chat.completions.create(
        model="none", messages=[{"role": "system", "content": "You are a helpful assistant."},
                                {"role": "user", "content": "Which city is the capital of France?"}],
        temperature=0, max_tokens=40)
    assert on_topic_capital_answer(reply.choices[0].message.content)
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streaming_yields_deltas_that_add_up_to_the_non_streamed_answer(client):
    messages = [{"role": "user", "content": "Say just the word yes."}]
    whole = client.chat.completions.create(model="none", messages=messages, temperature=0, max_tokens=16)
    stream = client.chat.completions.create(model="none", messages=messages, temperature=0, max_tokens=16,
                                            stream=True)
    text, finishes = "", []
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finishes.append(chunk.choices[0].finish_reason)
    assert text == whole.choices[0].message.content
    assert finishes[-1] in ("stop", "length")


def test_the_model_field_picks_the_modifier_and_models_lists_them(client, server):
    assert {m.id for m in client.models.list()} == {"auto", "base", "code"}
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=120)
    conn.request("POST", "/v1/chat/completions", json.dumps(
        {"model": "code", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}),
        {"Content-Type": "application/json"})
    body = json.loads(conn.getresponse().read())
    assert body["x_edge_assistant"]["modifier"] == "code"


def post_chat(server, body: dict) -> tuple[int, dict]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=120)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_base_and_none_are_the_same_choice_in_the_model_and_modifier_fields(server):
    question = {"messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 6, "temperature": 0}
    answers = []
    for choice in ({"model": "base"}, {"model": "none"}, {"model": "gpt-4o", "modifier": "none"},
                   {"modifier": "base"}):
        status, body = post_chat(server, {**question, **choice})
        assert status == 200, body
        ext = body["x_edge_assistant"]   # (the text may differ: a kept state is read in other batches)
        answers.append((ext["modifier"], ext["route"]["modifier"], ext["route"]["reason"]))
        assert body["choices"][0]["message"]["content"]
    assert answers[0][:2] == (None, None) and len(set(answers)) == 1


def test_a_bad_modifier_field_is_one_line_naming_the_modifiers_and_an_unknown_model_is_auto(server):
    status, body = post_chat(server, {"modifier": "nosuch", "messages": [{"role": "user", "content": "hi"}],
                                      "max_tokens": 2})
    message = body["error"]["message"]
    assert status == 400 and body["error"]["param"] == "modifier"
    assert "unknown modifier 'nosuch'" in message and "code" in message and "\n" not in message
    status, body = post_chat(server, {"model": "nosuch", "messages": [{"role": "user", "content": "hi"}],
                                      "max_tokens": 2})
    assert status == 200 and "chose" not in body["x_edge_assistant"]["route"]["reason"]


def test_max_tokens_gives_finish_reason_length(client):
    reply = client.chat.completions.create(model="none", messages=[{"role": "user", "content": "Tell a story."}],
                                           max_tokens=3, temperature=0)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 3


def test_a_stop_string_ends_the_reply_before_it(client):
    reply = client.chat.completions.create(
        model="none", messages=[{"role": "user", "content": "Count from 1 to 10 separated by commas."}],
        temperature=0, max_tokens=40, stop=["5"])
    text = reply.choices[0].message.content
    assert "5" not in text and "4" in text
    assert reply.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (json.dumps({"messages": []}).encode(), "non-empty list"),
    (json.dumps({"messages": [{"role": "wizard", "content": "x"}]}).encode(), "role"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}).encode(), "temperature"),
])
def test_bad_requests_get_a_400_with_an_openai_style_error(server, body, fragment):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    error = json.loads(response.read())["error"]
    assert response.status == 400 and fragment in error["message"]


def raw_post(server, body: bytes, headers: dict[str, str]) -> tuple[int, dict, str]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.putrequest("POST", "/v1/chat/completions", skip_host="Host" in headers)
    for key, value in headers.items():
        conn.putheader(key, value)
    conn.endheaders(body)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read().decode()


GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()


@pytest.mark.parametrize("headers, status, fragment", [
    ({"Content-Type": "text/plain", "Content-Length": str(len(GOOD))}, 400, "application/json"),
    ({"Content-Type": "application/json", "Content-Length": "abc"}, 400, "Content-Length"),
    ({"Content-Type": "application/json", "Content-Length": str(len(GOOD)), "Host": "evil.example:8080"}, 403,
     "localhost"),
])
def test_requests_a_web_page_could_forge_or_malformed_headers_are_refused(server, headers, status, fragment):
    code, _, body = raw_post(server, GOOD, headers)
    assert code == status and fragment in json.loads(body)["error"]["message"]


def test_a_streamed_request_whose_prompt_cannot_fit_gets_an_http_error_not_a_broken_stream(server):
    body = json.dumps({"stream": True, "max_tokens": 4, "messages": [
        {"role": "system", "content": "rule " * 3000}, {"role": "user", "content": "hi"}]}).encode()
    code, headers, text = raw_post(server, body, {"Content-Type": "application/json",
                                                  "Content-Length": str(len(body))})
    assert code >= 400 and headers["Content-Type"] == "application/json"
    assert "context window" in json.loads(text)["error"]["message"]


def test_a_client_that_disconnects_mid_stream_does_not_block_the_next_request(server, client):
    host, port = server.server_address[:2]
    sock = socket.create_connection((host, port), timeout=30)
    body = json.dumps({"model": "none", "stream": True, "max_tokens": 400,
                       "messages": [{"role": "user", "content": "Count from one to five hundred in words."}]})
    sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
    received = b""
    while b"data:" not in received:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the stream before sending any event"
        received += chunk
    sock.close()  # hang up mid-stream
    reply = client.chat.completions.create(model="none", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=2)
    assert reply.usage.completion_tokens == 2
    # The abandoned stream was cancelled, not run to its 400 tokens for nobody.
    assert any("generation cancelled" in line for line in server.test_log)
