from edge_assistant.server.stops import StopScanner


def feed_all(scanner, pieces):
    out = "".join(scanner.feed(p) for p in pieces)
    return out + scanner.flush()


def test_text_before_a_stop_string_split_across_pieces_is_kept_and_the_rest_dropped():
    s = StopScanner(("</end>",))
    assert feed_all(s, ["hello </", "en", "d> world"]) == "hello "
    assert s.stopped


def test_a_partial_match_that_does_not_complete_is_released():
    s = StopScanner(("STOP",))
    assert feed_all(s, ["ST", "OR", "E"]) == "STORE"
    assert not s.stopped


def test_no_stop_strings_pass_everything_through():
    assert feed_all(StopScanner(()), ["a", "b"]) == "ab"
