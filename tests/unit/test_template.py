from __future__ import annotations

import pytest

from edge_assistant.errors import TemplateError
from edge_assistant.runtime.generation import Message
from edge_assistant.runtime.template import CHATML, ChatTemplate

ESCAPES = [
    # Classic sandbox escapes through dunder attributes; each would reach os/subprocess if it ran.
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('touch /tmp/pwned').read() }}",
    "{% for m in messages %}{{ m.__class__.__base__.__subclasses__() }}{% endfor %}",
    "{{ messages.append({'role': 'x'}) }}",  # mutating the input is refused by the immutable sandbox
]


@pytest.mark.parametrize("source", ESCAPES)
def test_a_template_that_tries_to_escape_the_sandbox_is_refused(source, tmp_path):
    template = ChatTemplate(source, origin="evil.gguf")
    with pytest.raises(TemplateError, match="sandbox"):
        template.render([Message("user", "hi")])


def test_chatml_renders_roles_in_order_with_a_generation_prompt():
    text = ChatTemplate(CHATML).render([Message("system", "S"), Message("user", "U")])
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"


def test_raise_exception_in_a_template_becomes_a_clear_error():
    template = ChatTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(TemplateError, match="roles must alternate"):
        template.render([Message("user", "hi")])


def test_invalid_jinja_is_reported_with_its_line():
    with pytest.raises(TemplateError, match="line 2"):
        ChatTemplate("ok\n{% for %}")
