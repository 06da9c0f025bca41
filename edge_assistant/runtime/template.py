"""Chat templates from GGUF metadata, rendered in a sandbox.

A template ships inside a model file, so it is untrusted input: it is rendered
in Jinja's ImmutableSandboxedEnvironment, where attribute tricks such as
``''.__class__.__mro__`` raise a SecurityError instead of running code.
"""

from __future__ import annotations

import datetime
from typing import Sequence

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import TemplateError
from .generation import Message

# Used when a GGUF has no tokenizer.chat_template: ChatML, understood by most
# instruct models of the Llama family that have no template of their own.
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _raise_exception(message: str) -> None:
    raise TemplateError(f"the chat template refused the conversation: {message}",
                        hint="check the roles and order of the messages")


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


class ChatTemplate:
    """Compile once, render per request."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "", origin: str = "the model") -> None:
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.origin = origin
        # loopcontrols: Hugging Face enables {% break %}/{% continue %} for chat templates too.
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, autoescape=False,
                                            undefined=jinja2.Undefined, extensions=["jinja2.ext.loopcontrols"])
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"the chat template of {origin} is not valid Jinja ({exc.message}, line {exc.lineno})",
                                hint="rebuild the model file or set a template with a known-good model") from exc

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        try:
            return self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(
                f"the chat template of {self.origin} tried to leave its sandbox ({exc}); it was not run",
                hint="this model file is unsafe: use another bundle",
            ) from exc
        except TemplateError:
            raise
        except (jinja2.TemplateError, TypeError, ValueError, AttributeError) as exc:
            raise TemplateError(f"the chat template of {self.origin} failed to render ({exc})",
                                hint="rebuild the model file with a working chat template") from exc

