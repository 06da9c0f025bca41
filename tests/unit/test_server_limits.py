"""The bind policy and bounds of `serve` (server/limits.py)."""

from __future__ import annotations

import pytest

from edge_assistant.errors import UsageError
from edge_assistant.server.limits import Limits, check_api_key, is_loopback


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.4", False), ("example.com", False), ("", False)])
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_a_public_address_needs_a_key_and_the_refusal_names_both_ways_to_give_one():
    with pytest.raises(UsageError) as refused:
        check_api_key(None, loopback=False, host="0.0.0.0")
    assert "--api-key" in str(refused.value) and "EDGE_ASSISTANT_API_KEY" in str(refused.value)
    with pytest.raises(UsageError):
        check_api_key("", loopback=False, host="0.0.0.0")  # an empty variable is no key


@pytest.mark.parametrize("key", ["short", "a" * 15, "with a space 0123456789", "tab\tin-it-0123456789", "ключ" * 8])
def test_weak_or_unprintable_keys_are_refused(key):
    with pytest.raises(UsageError, match="at least 16"):
        check_api_key(key, loopback=True, host="127.0.0.1")


def test_loopback_needs_no_key_but_keeps_one_that_is_given():
    assert check_api_key(None, loopback=True, host="127.0.0.1") is None
    assert check_api_key("k" * 16, loopback=False, host="0.0.0.0") == "k" * 16


def test_limits_refuse_nonsense():
    with pytest.raises(UsageError):
        Limits(queue=-1)
    with pytest.raises(UsageError):
        Limits(max_connections=0)
