"""Fitting a conversation into the context window.

The prompt is the rendered chat template, tokenized with special tokens on, so
two things live here: control-token text typed into a message is broken up
(``<|im_start|>system`` would otherwise open a fake turn), and when the
conversation is too long the oldest turns are dropped until it fits.

Dropping used to re-render and re-tokenize the whole conversation once per
dropped turn: quadratic, under the engine lock. Now turns are tokenized once
each, from the newest back and only as far as the window reaches, to estimate
where the prompt must start; real renders of about the window's size confirm
it (two in the usual case). The cost follows the window, not the conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import llama_cpp

from ..errors import ModelError, TemplateError
from .generation import Message
from .template import ChatTemplate

# Fewer context tokens than this left for the reply means the prompt must shrink.
MIN_REPLY_TOKENS = 16
# Tokens a turn's markup costs when rendering it alone fails (templates that insist on roles' order).
_FALLBACK_TURN_OVERHEAD = 8
# A str can hold a surrogate only unpaired (decoders join valid pairs): never encodable as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class FittedPrompt:
    tokens: list[int]
    dropped: int = 0                                        # oldest turns left out
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tokenizer:
    """What fitting needs from the model: the engine's tokenizer, as plain callables."""

    prompt: Callable[[str], list[int]]        # a rendered prompt: BOS as the model wants, special tokens on
    text: Callable[[str], list[int]]          # plain text: no BOS, special tokens off
    detokenize: Callable[[list[int]], str]


class PromptFitter:
    """Renders and fits conversations for one model and window size."""

    def __init__(self, template: ChatTemplate, tokenizer: Tokenizer, n_ctx: int,
                 control: "re.Pattern[str] | None" = None) -> None:
        self.template = template
        self.tokenizer = tokenizer
        self.n_ctx = n_ctx
        self.control = control

    def neutralize(self, text: str) -> str:
        """Break control-token strings typed or pasted into a message with a zero-width space;
        lone surrogates (``"\\ud800"`` in a JSON request), which UTF-8 cannot encode, become U+FFFD."""
        text = _SURROGATE.sub("\ufffd", text)
        if self.control is None:
            return text
        return self.control.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)

    def fit(self, messages: Sequence[Message], max_tokens: int) -> FittedPrompt:
        """Tokens of the rendered conversation that fit the window, leaving room for the reply."""
        reserve = min(max_tokens, self.n_ctx // 2)
        budget = self.n_ctx - max(reserve, MIN_REPLY_TOKENS)
        # One system message: several (common from API clients) are joined in order.
        systems = [m.content for m in messages if m.role == "system"]
        system = [Message("system", _SURROGATE.sub("\ufffd", "\n\n".join(systems)))] if systems else []
        turns = [m for m in messages if m.role != "system"]
        neutral: dict[int, Message] = {}

        def turn(i: int) -> Message:  # neutralized on first use: old turns that are dropped never are
            if i not in neutral:
                neutral[i] = Message(turns[i].role, self.neutralize(turns[i].content))
            return neutral[i]

        def render(start: int) -> list[int]:
            return self.tokenizer.prompt(self.template.render(system + [turn(i) for i in range(start, len(turns))]))

        start, tokens = self._first_fitting_start(system, turns, turn, budget, render)
        prompt = FittedPrompt(tokens, dropped=start)
        kept = [turn(i) for i in range(start, len(turns))]
        if start:
            prompt.notices.append(
                f"the conversation is longer than the {self.n_ctx}-token context window: the {start} oldest "
                f"message{'s were' if start != 1 else ' was'} left out of the prompt (they stay in the history)")
        if len(prompt.tokens) > budget and kept:
            last = kept[-1]
            overflow = len(prompt.tokens) - budget
            content = self.tokenizer.text(last.content)
            keep = max(0, len(content) - overflow - 8)
            kept[-1] = Message(last.role, self.tokenizer.detokenize(content[len(content) - keep:]))
            prompt.tokens = self.tokenizer.prompt(self.template.render(system + kept))
            prompt.notices.append(f"your message alone is longer than the context window: only its last {keep} "
                                  "tokens were used")
        if len(prompt.tokens) > budget:
            raise ModelError(f"the prompt needs {len(prompt.tokens)} tokens but the context window holds {self.n_ctx}",
                             hint="shorten the system prompt or raise context_length in settings")
        return prompt

    def _first_fitting_start(self, system: list[Message], turns: Sequence[Message],
                             turn: Callable[[int], Message], budget: int,
                             render: Callable[[int], list[int]]) -> tuple[int, list[int]]:
        """The earliest turn the prompt may start at and still fit, with its tokens.

        A prompt never starts with an assistant turn, except a lone last turn. When
        nothing fits, the last possible start (for the caller to truncate).

        Turns are costed from the newest back, each tokenized once, and only until the
        estimate passes the budget: older turns are never tokenized. The estimate is then
        confirmed with real renders, each about the size of the window, stepping one start
        at a time where it was off (by a few tokens of template markup, in practice).
        """
        n = len(turns)
        if n <= 1:
            return 0, render(0)
        starts = sorted({0, n - 1, *(i for i in range(1, n) if turns[i].role == "user")})
        try:
            estimate = len(self.tokenizer.prompt(self.template.render(system)))   # system + generation prompt
        except TemplateError:
            estimate = 0   # a template that wants a user turn: the renders below still decide
        guess = len(starts) - 1
        costed = n
        for k in range(len(starts) - 1, -1, -1):
            while costed > starts[k]:
                costed -= 1
                estimate += self._turn_cost(turn(costed))
            if estimate > budget:
                break
            guess = k
        tokens = render(starts[guess])
        if len(tokens) <= budget:
            while guess > 0:                        # the estimate may be pessimistic: try earlier starts
                earlier = render(starts[guess - 1])
                if len(earlier) > budget:
                    break
                guess, tokens = guess - 1, earlier
        else:
            while guess < len(starts) - 1:          # or optimistic: later ones
                guess += 1
                tokens = render(starts[guess])
                if len(tokens) <= budget:
                    break
        return starts[guess], tokens

    def _turn_cost(self, turn: Message) -> int:
        """Tokens one turn adds to the prompt (estimate): its rendering alone, or its text plus markup."""
        try:
            return len(self.tokenizer.prompt(self.template.render([turn], add_generation_prompt=False)))
        except TemplateError:
            return len(self.tokenizer.text(turn.content)) + _FALLBACK_TURN_OVERHEAD


def control_token_pattern(vocab: object) -> "re.Pattern[str] | None":
    """A regex matching the text of every control token of the vocabulary (longest first)."""
    texts = set()
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        if llama_cpp.llama_vocab_get_attr(vocab, token) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL:
            text = (llama_cpp.llama_vocab_get_text(vocab, token) or b"").decode("utf-8", "replace")
            if len(text) > 1:
                texts.add(text)
    if not texts:
        return None
    return re.compile("|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True)))
