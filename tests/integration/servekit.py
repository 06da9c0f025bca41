"""A real `serve` server on loopback for tests: the real engine, a recording assistant, a log."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from edge_assistant.runtime.assistant import Assistant
from edge_assistant.runtime.generation import Generation
from edge_assistant.sampling import SamplingParams
from edge_assistant.server.http import AssistantServer, make_server
from edge_assistant.server.limits import Limits


@dataclass
class RecordingAssistant(Assistant):
    """An Assistant that keeps every Generation it starts, so tests can see how each one ended."""

    generations: list[Generation] = field(default_factory=list)

    def reply(self, messages: Any, **kwargs: Any) -> Any:
        decision, generation = super().reply(messages, **kwargs)
        self.generations.append(generation)
        return decision, generation


@contextmanager
def running_server(assistant: Assistant, *, limits: Limits = Limits(), api_key: str | None = None,
                   defaults: SamplingParams = SamplingParams(max_tokens=8, temperature=0.0),
                   host: str = "127.0.0.1") -> Iterator[AssistantServer]:
    log: list[str] = []
    server = make_server(assistant, host, 0, defaults, log=log.append, limits=limits, api_key=api_key)
    server.test_log = log  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)


def wait_for(predicate: Any, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
