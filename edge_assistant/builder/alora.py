"""Activated LoRA (aLoRA) modifiers in the builder: the invocation sequence and the rows that train it.

An aLoRA modifier is trained with peft's ``LoraConfig(alora_invocation_tokens=...)``:
the adapter is off for every token before the last occurrence of the invocation
sequence and on from its first token. Ours is the sequence that opens an assistant
turn in the base's own chat template (``<|im_start|>assistant\\n`` for ChatML,
``<|start_header_id|>assistant<|end_header_id|>\\n\\n`` for Llama 3), found here by
rendering the template, never written down per model. The conversation before the
reply is then the base's alone, so at run time its KV state is shared by the base
and every aLoRA modifier.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from ..errors import BuildError
from ..runtime.alora import invocation_start
from .dataset import IGNORE_INDEX, Example, render

# A conversation to render the template with; any user text works, the opener does not depend on it.
_PROBE = [{"role": "user", "content": "Hello there."}]
_PROBE_REPLY = {"role": "assistant", "content": "Hi! How can I help?"}


def invocation_tokens(tokenizer: Any) -> list[int]:
    """The token ids of the generation prompt of ``tokenizer``'s chat template (what opens an assistant turn).

    The opener is the text the template adds with ``add_generation_prompt=True``;
    its tokens must also appear, as they are, inside a rendered conversation with
    a reply (or peft would never find them in a training row).
    """
    plain = render(tokenizer, _PROBE)
    prompt = render(tokenizer, _PROBE, add_generation_prompt=True)
    if not prompt.startswith(plain) or len(prompt) == len(plain):
        raise BuildError("the base's chat template adds no generation prompt, so an aLoRA modifier has no "
                         "invocation sequence", hint="use kind = \"lora\" for this base's modifiers")
    tokens = list(tokenizer(prompt[len(plain):], add_special_tokens=False)["input_ids"])
    full = render(tokenizer, _PROBE + [_PROBE_REPLY])
    if invocation_start(tokenizer(full, add_special_tokens=False)["input_ids"], tokens) is None:
        raise BuildError(f"the assistant-turn opener {prompt[len(plain):]!r} tokenizes differently inside a "
                         "conversation, so an aLoRA modifier could not find it",
                         hint="use kind = \"lora\" for this base's modifiers")
    return tokens


def activated_examples(examples: Sequence[Example], invocation: Sequence[int]) -> tuple[list[Example], int]:
    """The rows an aLoRA learns from, with labels only where the adapter is on; and how many rows were dropped.

    peft turns the adapter on at the last invocation of each row, so answer tokens
    before it (earlier turns of a multi-turn row) come from the base alone and are
    not counted in the loss. A row with no invocation (or none of its answer
    left after it) teaches the adapter nothing and is dropped.
    """
    kept = []
    for e in examples:
        start = invocation_start(e.input_ids, invocation)
        if start is None:
            continue
        labels = [IGNORE_INDEX] * start + list(e.labels[start:])
        if any(label != IGNORE_INDEX for label in labels):
            kept.append(replace(e, labels=labels))
    return kept, len(examples) - len(kept)
