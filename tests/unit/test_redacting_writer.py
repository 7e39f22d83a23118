"""A fetched file scrubbed on its way to disk: no secret survives a chunk boundary.

:class:`~orchestrator.output.RedactingWriter` is what a layer's JUnit XML is written
through while it streams from its host (``Transport.get_to``): the file never sits whole
in memory, so a secret may arrive cut in two, in any of the spellings XML, JSON or a URL
give it (:func:`~orchestrator.vault.encoded_forms`), or cut inside a UTF-8 character.
"""

from __future__ import annotations

import io
import json
from urllib.parse import quote

import pytest

from orchestrator.output import RedactingWriter
from orchestrator.vault import encoded_forms, redact

# XML escapes & < > and both quotes; JSON the quote; a URL all of them: each spelling differs.
SECRET = "p&ss<wo>rd\"q'x"
FORMS = encoded_forms([SECRET])
XML_ATTRIBUTE = "p&amp;ss&lt;wo&gt;rd&quot;q&apos;x"  # as an XML writer puts it in message="..."
XML_TEXT = "p&amp;ss&lt;wo>rd\"q'x"  # as in element text (> and quotes left raw)
JSON = json.dumps({"pw": SECRET})  # the quote escaped: p&ss<wo>rd\"q'x
URL = quote(SECRET, safe="")
DOCUMENT = (
    '<testsuite><testcase name="t"><failure message="login with '
    f'{XML_ATTRIBUTE} failed">password={XML_TEXT} json={JSON}'
    f" url=https://u:{URL}@h/ raw={SECRET}</failure></testcase></testsuite>"
).encode()


def _scrub(pieces: list[bytes], secrets: list[str]) -> bytes:
    out = io.BytesIO()
    writer = RedactingWriter(out, secrets)
    for piece in pieces:
        assert writer.write(piece) == len(piece)
    writer.finish()
    return out.getvalue()


def _leaks(data: bytes) -> list[str]:
    text = data.decode("utf-8", "replace")
    return [form for form in FORMS if form in text]


def test_the_document_holds_every_spelling_the_test_means() -> None:
    """Guards the other tests: each form below is a different spelling, and is in it."""
    text = DOCUMENT.decode()
    assert {XML_ATTRIBUTE, XML_TEXT, SECRET} <= set(FORMS)
    assert all(form in text for form in (XML_ATTRIBUTE, XML_TEXT, SECRET, URL))
    assert json.dumps(SECRET)[1:-1] in text and json.dumps(SECRET)[1:-1] != SECRET
    assert len(_leaks(DOCUMENT)) >= 4


def test_each_xml_json_and_url_spelling_is_scrubbed_in_one_write() -> None:
    """The baseline the split tests compare with: all five spellings go in one write."""
    scrubbed = _scrub([DOCUMENT], FORMS)
    assert _leaks(scrubbed) == []
    assert scrubbed.count(b"[redacted]") == 5
    assert scrubbed.decode() == redact(DOCUMENT.decode(), FORMS)


@pytest.mark.parametrize("secret", [SECRET, XML_ATTRIBUTE, XML_TEXT])
def test_a_secret_cut_in_two_at_every_offset_is_still_scrubbed(secret: str) -> None:
    """Every cut of the document that falls inside one spelling of the secret, and every
    other cut too: two writes scrub exactly what one write of the whole does."""
    start = DOCUMENT.index(secret.encode())
    expected = redact(DOCUMENT.decode(), FORMS).encode()
    for cut in range(start - 1, start + len(secret.encode()) + 2):
        scrubbed = _scrub([DOCUMENT[:cut], DOCUMENT[cut:]], FORMS)
        assert scrubbed == expected, cut


def test_every_piece_size_scrubs_the_same_as_the_whole() -> None:
    """Pieces from one byte to past the longest spelling: a secret may span many pieces."""
    expected = redact(DOCUMENT.decode(), FORMS).encode()
    for size in range(1, max(map(len, FORMS)) + 3):
        pieces = [DOCUMENT[at : at + size] for at in range(0, len(DOCUMENT), size)]
        assert _scrub(pieces, FORMS) == expected, size


def test_a_cut_inside_a_multibyte_character_is_neither_a_leak_nor_garbled() -> None:
    """The secret and its neighbours hold 2-, 3- and 4-byte characters; a byte cut inside
    one must not turn it into U+FFFD, nor let the secret through."""
    secret = "kéy€pass🔑"
    data = f"<x a='ü{secret}ß'>{secret}€</x>".encode()
    expected = redact(data.decode(), [secret]).encode()
    assert expected.count(b"[redacted]") == 2
    for cut in range(len(data) + 1):
        assert _scrub([data[:cut], data[cut:]], [secret]) == expected, cut
    assert _scrub([data[at : at + 1] for at in range(len(data))], [secret]) == expected


def test_bytes_that_are_not_utf8_are_replaced_as_before() -> None:
    """The stored copy was always the file decoded with errors replaced: same here."""
    data = b"<x>\xff\xfe " + SECRET.encode() + b" \xc3</x>"
    assert _scrub([data], [SECRET]) == redact(data.decode("utf-8", "replace"), [SECRET]).encode()


def test_only_the_end_that_may_start_a_secret_is_held_back() -> None:
    """Streaming, not buffering: after a MiB-long write nearly all of it is already out,
    and :meth:`finish` writes the rest."""
    out = io.BytesIO()
    writer = RedactingWriter(out, FORMS)
    writer.write(b"x" * (1 << 20))
    held = (1 << 20) - len(out.getvalue())
    assert 0 < held < 2 * max(map(len, FORMS))
    writer.finish()
    assert out.getvalue() == b"x" * (1 << 20)


def test_no_secrets_passes_the_bytes_through() -> None:
    """A run without secrets stores the file as it came, byte for byte."""
    assert _scrub([DOCUMENT[:7], DOCUMENT[7:]], []) == DOCUMENT
