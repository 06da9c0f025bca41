"""What a failed hub request means to the user: huggingface-hub's and its HTTP client's errors, told apart once.

Each call site of the hub says, per kind of failure it expects, which of our errors
it becomes (:class:`Say`); :func:`translated` does the telling apart. A failure of
a kind the site did not name propagates unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple

from ..errors import EdgeAssistantError

# Most specific first: the "not found" errors of huggingface-hub are HTTP errors too.
KINDS = ("revision", "repository", "entry", "refused", "transport")


class Say(NamedTuple):
    """The error a kind of hub failure becomes; ``message`` gets the failure's short text when callable."""

    error: type[EdgeAssistantError]
    message: str | Callable[[str], str]
    hint: str | Callable[[BaseException], str]


def short(exc: BaseException) -> str:
    """The exception's type and first line: enough to tell a DNS failure from a 403."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


def _types(kind: str) -> tuple[type[BaseException], ...]:
    from huggingface_hub import errors

    if kind == "transport":
        import httpx2   # the HTTP client under huggingface-hub 2.x

        return (httpx2.HTTPError, OSError)
    return ({"revision": errors.RevisionNotFoundError, "repository": errors.RepositoryNotFoundError,
             "entry": errors.EntryNotFoundError, "refused": errors.HfHubHTTPError}[kind],)


@contextmanager
def translated(**says: Say) -> Iterator[None]:
    """Run hub requests; a failure of a kind named in ``says`` is raised as what it says."""
    unknown = set(says) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown hub failure kinds: {sorted(unknown)}")
    try:
        yield
    except Exception as exc:
        for kind in KINDS:
            if kind in says and isinstance(exc, _types(kind)):
                say = says[kind]
                message = say.message(short(exc)) if callable(say.message) else say.message
                hint = say.hint(exc) if callable(say.hint) else say.hint
                raise say.error(message, hint=hint) from exc
        raise
