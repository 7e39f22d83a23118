"""A layer's output stream: secrets scrubbed across chunk boundaries, the cap shared."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.output import StreamRedactor, _shares
from orchestrator.vault import redact

STREAMED_SECRETS = ["s3s3s3", "ab€ab€", "bbbbbbbb"]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from([*STREAMED_SECRETS, "a", "b", "€", "s", "3"]), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=8),
)
def test_streamed_redaction_equals_redacting_the_whole(pieces: list[str], cuts: list[int]) -> None:
    secrets, text = STREAMED_SECRETS, "".join(pieces)
    data = text.encode()
    redactor = StreamRedactor(secrets)
    out, at = b"", 0
    for cut in sorted(cuts):  # byte cuts: inside a secret, inside the 3-byte euro sign
        out += redactor.feed(data[at : max(at, cut)])
        at = max(at, cut)
    out += redactor.feed(data[at:], final=True)
    assert out.decode() == redact(text, secrets)


def test_the_cap_goes_to_the_stream_that_needs_it() -> None:
    assert _shares(100, [10, 500]) == [10, 90]
    assert _shares(100, [500, 500]) == [50, 50]
    assert _shares(100, [30, 40]) == [30, 40]
    assert _shares(101, [500, 0]) == [101, 0]
