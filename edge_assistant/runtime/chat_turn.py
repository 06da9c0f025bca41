"""One chat turn against the history: commit the question, route, stream, save.

The order is what makes history safe: the user's message is committed first,
then an empty reply row marked ``partial`` records the route, then the text
is committed as it streams, and the row is marked ``complete``, ``stopped``
or ``error`` at the end. It runs on the chat app's worker thread; the app
learns what happens through a :class:`TurnObserver` (whose methods are called
on that thread) and can :meth:`ChatTurn.stop` it from any thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol, Sequence

from ..errors import EdgeAssistantError
from ..router.decision import RouteDecision
from .assistant import AUTO, Assistant
from .assistant_handle import AssistantHandle
from .generation import Generation, Message
from ..sampling import SamplingParams
from .history import History, StoredMessage
from .reply_recorder import ReplyRecorder


class TurnObserver(Protocol):
    def user_committed(self, message: StoredMessage) -> None: ...
    def reply_started(self, reply_id: int, decision: RouteDecision | None) -> None: ...
    def reply_progress(self, reply_id: int, text: str, tokens: int, tok_s: float) -> None: ...
    def reply_finished(self, message: StoredMessage) -> None: ...


@dataclass(frozen=True)
class TurnRequest:
    conversation_id: int
    user_text: str | None          # None: regenerate the reply to the last user message
    override: str = AUTO           # auto, none or a modifier name (for this message only)
    sampling: SamplingParams = SamplingParams()


def prompt_messages(system_prompt: str, history: Sequence[StoredMessage]) -> list[Message]:
    """What the model sees: the system prompt and every turn with text.

    Stopped and interrupted replies are kept (the user saw them); replies that
    failed before any text are left out.
    """
    out = [Message("system", system_prompt)] if system_prompt.strip() else []
    out += [Message(m.role, m.content) for m in history if m.role == "user" or m.content]
    return out


class ChatTurn:
    def __init__(self, history: History, model: AssistantHandle, request: TurnRequest, observer: TurnObserver, *,
                 save_every_tokens: int = 16, save_every_s: float = 0.5) -> None:
        self.history = history
        self._model = model            # the turn waits for it if the model is still loading
        self.request = request
        self.observer = observer
        self.save_every_tokens = save_every_tokens
        self.save_every_s = save_every_s
        self._stop = threading.Event()
        self._generation: Generation | None = None
        self._lock = threading.Lock()
        self._answered_by: Assistant | None = None   # set when the reply finished

    def stop(self) -> None:
        """Stop generating (from any thread): the engine halts between tokens."""
        with self._lock:
            self._stop.set()
            if self._generation is not None:
                self._generation.cancel()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> StoredMessage:
        """Run the whole turn on this thread; returns the reply as stored.

        An ``EdgeAssistantError`` is recorded on the reply (status ``error``) and
        then raised for the caller to show. Any other exception is recorded the
        same way before it propagates, so no reply stays ``partial`` after a bug.
        """
        request = self.request
        if request.user_text is not None:
            self.observer.user_committed(self.history.add_user_message(request.conversation_id,
                                                                        request.user_text))
        else:
            # Regenerate: the replies after the last question give way to the new one.
            for message in reversed(self.history.messages(request.conversation_id)):
                if message.role == "user":
                    break
                self.history.delete_message(message.id)
        conversation = self.history.conversation(request.conversation_id)
        stored = self.history.messages(request.conversation_id)
        if not stored or stored[-1].role != "user":
            raise EdgeAssistantError("there is no question to answer in this conversation",
                                     hint="type a message first")
        previous = next((m.modifier for m in reversed(stored) if m.role == "assistant"), None)
        messages = prompt_messages(conversation.system_prompt, stored)

        reply_id: int | None = None
        recorder: ReplyRecorder | None = None
        try:
            assistant = self._model.wait(self._stop)
            if assistant is None:  # stopped while the model was still loading: nothing was generated
                reply_id = self.history.begin_reply(request.conversation_id, None)
                self.observer.reply_started(reply_id, None)
                final = self.history.finish_reply(reply_id, "", "stopped")
                self.observer.reply_finished(final)
                return final
            decision, generation = assistant.reply(messages, override=request.override, previous=previous,
                                                   sampling=request.sampling)
            reply_id = self.history.begin_reply(request.conversation_id, decision)
            self.observer.reply_started(reply_id, decision)
            recorder = ReplyRecorder(self.history, reply_id, every_tokens=self.save_every_tokens,
                                     every_s=self.save_every_s)
            with self._lock:
                self._generation = generation
                if self._stop.is_set():
                    generation.cancel()
            first_at: float | None = None
            try:
                for piece in generation:
                    recorder.add(piece)
                    now = time.perf_counter()
                    first_at = first_at if first_at is not None else now
                    tok_s = (recorder.tokens - 1) / (now - first_at) if recorder.tokens > 1 else 0.0
                    self.observer.reply_progress(reply_id, recorder.text, recorder.tokens, tok_s)
            finally:
                generation.close()  # releases the engine even when saving a piece failed
            result = generation.result
            status = "stopped" if result.finish_reason == "cancelled" or self._stop.is_set() else "complete"
            final = recorder.finish(status, result)
        except BaseException as exc:
            if reply_id is None:
                reply_id = self.history.begin_reply(request.conversation_id, None)
                self.observer.reply_started(reply_id, None)
            text = recorder.text if recorder is not None else ""
            final = self.history.finish_reply(reply_id, text, "error", error=str(exc) or type(exc).__name__)
            self.observer.reply_finished(final)
            raise
        self.observer.reply_finished(final)
        self._answered_by = assistant
        return final

    def catch_up(self) -> int:
        """After a finished reply, bring the engine's other kept states up to this conversation
        (``LlamaEngine.catch_up``), so that switching back to them reads only the next question.
        Meant for a background worker while the user reads; tokens read (0 if nothing to do)."""
        assistant = self._answered_by
        catch_up = getattr(assistant.engine, "catch_up", None) if assistant is not None else None
        if catch_up is None or self._stop.is_set():
            return 0
        conversation = self.history.conversation(self.request.conversation_id)
        return int(catch_up(prompt_messages(conversation.system_prompt,
                                            self.history.messages(self.request.conversation_id))))
