"""OpenAI chat-completions request parsing and response shapes.

Only what a local assistant needs: chat completions (streamed or not) and the
model list. The `model` field picks the modifier: ``auto`` (the router),
``base`` (the base alone; ``none`` also works) or a modifier name; any other value
(for example the name a client hard-codes, such as ``gpt-4o``) means ``auto``.
Our own ``modifier`` field, when sent, takes precedence and must be one of those.

Fields we cannot honour (tools, JSON schemas, logprobs, n > 1) are refused with a 400
that names them, never silently ignored; typed fields must have their JSON type.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import ModifierError
from ..modifier_names import AUTO, choose, is_choice
from ..runtime.generation import GenerationResult, Message
from ..sampling import SamplingParams
from ..router.decision import RouteDecision

MAX_MESSAGES = 500

# Fields a client may send that this server cannot honour: refused when set to anything but
# their "off" values (the values listed), so a client never gets a silently different answer.
_TOOLS = "function calling is not implemented"
UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "tools": ((None, []), _TOOLS), "functions": ((None, []), _TOOLS),
    "tool_choice": ((None, "none", "auto"), _TOOLS), "function_call": ((None, "none", "auto"), _TOOLS),
    "logprobs": ((None, False), "log probabilities are not returned"),
    "top_logprobs": ((None, 0), "log probabilities are not returned"),
    "logit_bias": ((None, {}), "logit bias is not implemented"),
    "audio": ((None,), "only text is supported"), "modalities": ((None, ["text"]), "only text is supported"),
    "prediction": ((None,), "predicted outputs are not implemented"),
}


class RequestError(ValueError):
    """A request the client must fix (HTTP 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[Message, ...]
    override: str
    model: str
    sampling: SamplingParams
    stream: bool
    stop: tuple[str, ...]


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return _text(content, f"{where}.content")
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise RequestError(f"{where}: only text content parts are supported", "messages")
            parts.append(_text(part["text"], f"{where}.content"))
        return "".join(parts)
    if content is None:
        return ""
    raise RequestError(f"{where}.content must be a string or a list of text parts", "messages")


def _text(text: str, where: str, param: str = "messages") -> str:
    """`text` if it is valid Unicode (it can be written back as UTF-8), else a 400 naming `where`."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(f"{where} is not valid Unicode (a lone surrogate such as "
                           f"\\u{ord(text[exc.start]):04x} at character {exc.start})", param) from None
    return text


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for key, (off, why) in UNSUPPORTED.items():
        if key in body and not any(body[key] == value and type(body[key]) is type(value) for value in off):
            raise RequestError(f"'{key}' is not supported by this server ({why}): leave it out", key)
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        raise RequestError(f"response_format {kind or response_format!r} is not supported: only "
                           "{\"type\": \"text\"} (structured JSON output is not implemented)", "response_format")
    n = body.get("n")
    if n is not None and (type(n) is not int or n != 1):
        raise RequestError("only n=1 is supported: send one request per completion", "n")
    for key in ("stream", "store", "parallel_tool_calls"):
        if key in body and body[key] is not None and type(body[key]) is not bool:
            raise RequestError(f"'{key}' must be true or false (a JSON boolean, not {type(body[key]).__name__})", key)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RequestError("'stream_options' must be an object", "stream_options")


def _number(body: dict[str, Any], key: str, kind: type, low: float, high: float) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise RequestError(f"'{key}' must be a number", key)
    if not low <= value <= high:
        raise RequestError(f"'{key}' must be between {low} and {high}", key)
    return kind(value)


def _override(body: dict[str, Any], model: str, modifier_names: tuple[str, ...]) -> str:
    """Who answers: the ``modifier`` field (checked), else ``model`` if it names a choice, else auto."""
    if "modifier" not in body:
        return choose(model, modifier_names) if is_choice(model, modifier_names) else AUTO
    modifier = body["modifier"]
    if not isinstance(modifier, str):
        raise RequestError("'modifier' must be a string", "modifier")
    _text(modifier, "'modifier'", "modifier")  # named in the error below, which must encode
    try:
        return choose(modifier, modifier_names)
    except ModifierError as exc:
        raise RequestError(str(exc), "modifier") from None


def parse_chat_request(body: Any, modifier_names: tuple[str, ...], defaults: SamplingParams) -> ChatRequest:
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    _refuse_unsupported(body)
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise RequestError("'messages' must be a non-empty list", "messages")
    if len(raw_messages) > MAX_MESSAGES:
        raise RequestError(f"{len(raw_messages)} messages is over the limit of {MAX_MESSAGES} per request: "
                           "send only the recent turns", "messages")
    messages = []
    for i, m in enumerate(raw_messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise RequestError(f"{where} must be an object", "messages")
        role = m.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise RequestError(f"{where}.role must be system, user or assistant", "messages")
        messages.append(Message(role, _content_text(m.get("content"), where)))
    model = body.get("model") or "auto"
    if not isinstance(model, str):
        raise RequestError("'model' must be a string", "model")
    _text(model, "'model'", "model")  # echoed in the reply, which must encode
    override = _override(body, model, modifier_names)
    max_tokens = _number(body, "max_completion_tokens", int, 1, 1 << 20) or _number(body, "max_tokens", int, 1, 1 << 20)
    temperature = _number(body, "temperature", float, 0, 2)
    top_p = _number(body, "top_p", float, 0.0001, 1)
    seed = _number(body, "seed", int, -(1 << 63), (1 << 63) - 1)
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        stops = tuple(stop)
    else:
        raise RequestError("'stop' must be a string or a list of up to 4 strings", "stop")
    for s in stops:
        _text(s, "'stop'", "stop")
    given = dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    sampling = dataclasses.replace(defaults, **{k: v for k, v in given.items() if v is not None})
    return ChatRequest(tuple(messages), override, model, sampling, body.get("stream") is True,
                       tuple(s for s in stops if s))


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def route_extension(decision: RouteDecision, result: GenerationResult | None) -> dict[str, Any]:
    """Our additions, under one key so OpenAI clients ignore them."""
    ext: dict[str, Any] = {"route": decision.to_dict(), "modifier": result.modifier if result else decision.modifier}
    if result is not None:
        ext.update(ttft_s=round(result.ttft_s, 4), decode_tok_s=round(result.decode_tok_s, 2),
                   dropped_turns=result.dropped_turns, notices=result.notices)
    return ext


def completion_body(cid: str, model: str, text: str, finish: str, result: GenerationResult,
                    decision: RouteDecision) -> dict[str, Any]:
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                  "total_tokens": result.prompt_tokens + result.completion_tokens},
        "x_edge_assistant": route_extension(decision, result),
    }


def chunk_body(cid: str, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def openai_finish(reason: str) -> str:
    # OpenAI has no "cancelled": a stopped stream ends as "stop".
    return "length" if reason == "length" else "stop"
