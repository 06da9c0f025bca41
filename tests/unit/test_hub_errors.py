"""bundle/hub_errors: huggingface-hub's real exception classes become the error each call site names."""

from __future__ import annotations

import httpx2
import pytest
from huggingface_hub import errors as hf

from edge_assistant.bundle.hub import _push_refused_hint
from edge_assistant.bundle.hub_errors import Say, translated
from edge_assistant.errors import HubError, IntegrityError


def _response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", "https://hub.example/api/x"))


def _raise(exc: BaseException, **says: Say) -> BaseException:
    with pytest.raises(BaseException) as info:
        with translated(**says):
            raise exc
    return info.value


SAYS = {"revision": Say(HubError, "no such revision", "name another"),
        "entry": Say(IntegrityError, "no such file", "push again"),
        "refused": Say(HubError, lambda why: f"refused ({why})", "check access"),
        "transport": Say(HubError, lambda why: f"unreachable ({why})", "check the connection")}


def test_the_most_specific_kind_a_site_names_wins() -> None:
    # RevisionNotFoundError is an HTTP error (and a transport error) too: it must not read "refused".
    err = _raise(hf.RevisionNotFoundError("Revision Not Found", response=_response(404)), **SAYS)
    assert isinstance(err, HubError) and err.message == "no such revision" and err.hint == "name another"
    err = _raise(hf.EntryNotFoundError("Entry Not Found"), **SAYS)
    assert isinstance(err, IntegrityError) and err.message == "no such file"
    assert isinstance(err.__cause__, hf.EntryNotFoundError)


def test_a_kind_the_site_does_not_name_falls_to_the_next_that_matches() -> None:
    err = _raise(hf.RepositoryNotFoundError("Repository Not Found for url", response=_response(401)), **SAYS)
    assert isinstance(err, HubError)
    assert err.message == "refused (RepositoryNotFoundError: Repository Not Found for url)"


def test_transport_failures_carry_their_first_line() -> None:
    err = _raise(httpx2.ConnectError("[Errno -2] Name or service not known\nmore detail"), **SAYS)
    assert err.message == "unreachable (ConnectError: [Errno -2] Name or service not known)"
    assert _raise(ConnectionResetError(), **SAYS).message == "unreachable (ConnectionResetError)"


def test_other_errors_pass_through_unchanged() -> None:
    original = ValueError("a bug, not the hub")
    assert _raise(original, **SAYS) is original
    # a site that expects no transport failure lets it through too
    dropped = httpx2.ReadTimeout("timed out")
    assert _raise(dropped, revision=SAYS["revision"]) is dropped


def test_a_misspelt_kind_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="refsued"):
        with translated(refsued=SAYS["refused"]):
            pass


def test_a_refused_push_says_to_log_in_only_when_the_hub_wants_credentials() -> None:
    for status in (401, 403):
        assert "hf auth login" in _push_refused_hint(hf.HfHubHTTPError("denied", response=_response(status)))
    assert "hf auth login" not in _push_refused_hint(hf.HfHubHTTPError("bad", response=_response(422)))
