"""The headless-Chromium client the report tests look through (tests/browser.py).

Real Chromium on small local pages: what it reports must be true before a report test
can trust it. A missing Chromium fails here with the message saying how to install it.
Remote addresses below are private or reserved (``.invalid``); the browser is started
so that nothing reaches them anyway.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import CHROMIUM_ENV, Browser, BrowserError, open_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with open_browser() as running:
        yield running


def page(tmp_path: Path, body: str, name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(f"<!doctype html><html><head><meta charset=utf-8></head><body>{body}")
    return path


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header chunk (IHDR, right after the signature)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_page_asking_for_remote_files_is_reported_with_every_url(
    browser: Browser, tmp_path: Path
) -> None:
    path = page(
        tmp_path,
        '<img src="http://10.255.255.1/x.png">'
        '<link rel=stylesheet href="https://fonts.example.invalid/font.css">',
    )
    opened = browser.open(path)
    assert sorted(opened.requests) == [
        "http://10.255.255.1/x.png",
        "https://fonts.example.invalid/font.css",
    ]


def test_a_self_contained_page_makes_no_request(browser: Browser, tmp_path: Path) -> None:
    pixel = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="
    path = page(
        tmp_path,
        f"<style>p {{ color: red }}</style><p>inline</p><img src='{pixel}'>"
        "<script>document.title = 'scripted'</script>",
    )
    opened = browser.open(path)
    assert opened.requests == []
    assert opened.evaluate("document.title") == "scripted"  # it did load and run


def test_a_3000px_element_makes_the_page_wider_than_the_window(
    browser: Browser, tmp_path: Path
) -> None:
    opened = browser.open(page(tmp_path, '<div style="width: 3000px">wide</div>'))
    assert opened.inner_width == 1366
    assert opened.scroll_width >= 3000


def test_a_page_of_ordinary_text_fits_the_window(browser: Browser, tmp_path: Path) -> None:
    opened = browser.open(page(tmp_path, "<p>short</p>" * 200), width=800, height=600)
    assert opened.inner_width == 800
    assert opened.scroll_width <= opened.client_width < opened.inner_width  # a scrollbar


def test_a_long_page_a_little_narrower_than_the_window_still_scrolls_sideways(
    browser: Browser, tmp_path: Path
) -> None:
    """Its vertical scrollbar takes the last pixels: only the client width shows it."""
    body = '<div style="width: 1360px; height: 3000px; margin: 0">tall</div>'
    opened = browser.open(page(tmp_path, f"<style>body {{ margin: 0 }}</style>{body}"))
    assert opened.scroll_width == 1360 <= opened.inner_width
    assert opened.scroll_width > opened.client_width


def test_evaluate_returns_json_values(browser: Browser, tmp_path: Path) -> None:
    opened = browser.open(page(tmp_path, "<ul><li data-x=a>one</li><li data-x=b>two</li></ul>"))
    rows = "[...document.querySelectorAll('li')].map(li => [li.dataset.x, li.textContent])"
    assert opened.evaluate(rows) == [["a", "one"], ["b", "two"]]
    assert opened.evaluate("({n: 1.5, ok: true, none: null})") == {
        "n": 1.5,
        "ok": True,
        "none": None,
    }
    assert opened.evaluate("Promise.resolve('awaited')") == "awaited"


def test_a_script_error_in_evaluate_is_an_error_naming_it(browser: Browser, tmp_path: Path) -> None:
    opened = browser.open(page(tmp_path, "<p>x</p>"))
    with pytest.raises(BrowserError, match="nope is not defined"):
        opened.evaluate("nope.at.all")


def test_a_screenshot_is_a_png_of_the_whole_page(browser: Browser, tmp_path: Path) -> None:
    opened = browser.open(page(tmp_path, '<div style="height: 2000px; background: teal">x</div>'))
    shot = opened.screenshot(tmp_path / "page.png")
    width, height = png_size(shot.read_bytes())
    assert 1300 < width <= 1366  # the window less its vertical scrollbar
    assert height == 2016  # 2000 px and the body's 8 px margins
    window = opened.screenshot(tmp_path / "window.png", full_page=False)
    data = window.read_bytes()
    assert png_size(data) == (1366, 900)
    assert 1000 < len(data) < 5_000_000


def test_a_long_page_in_a_tab_behind_another_can_still_be_photographed(
    browser: Browser, tmp_path: Path
) -> None:
    """A tab that is not in front draws no frames: a full-page capture of a long page of
    text there waited for one until the timeout (the report tests open several tabs)."""
    text = "".join(f"<p>paragraph {i} {'words ' * 30}</p>" for i in range(150))
    behind = browser.open(page(tmp_path, text, "behind.html"))
    browser.open(page(tmp_path, "<p>in front</p>", "front.html"))
    shot = behind.screenshot(tmp_path / "behind.png")
    assert png_size(shot.read_bytes())[1] > 3000


def start_error(executable: str | None = None, timeout: float = 30) -> str:
    """The message of the error that starting this browser ends in."""
    with pytest.raises(BrowserError) as raised, open_browser(executable, timeout):
        pass
    return str(raised.value)


def test_a_missing_executable_is_a_clear_error(tmp_path: Path) -> None:
    message = start_error(str(tmp_path / "no-chromium-here"))
    assert "cannot start chromium" in message and "no-chromium-here" in message
    assert "Install Debian's chromium" in message and CHROMIUM_ENV in message


def test_the_executable_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "from-env"))
    assert "from-env" in start_error()


def test_a_browser_that_exits_at_once_is_an_error_with_its_output(tmp_path: Path) -> None:
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\necho 'no display, giving up' >&2\nexit 5\n")
    fake.chmod(0o755)
    message = start_error(str(fake))
    assert "exited (code 5)" in message and "no display, giving up" in message


def test_a_browser_that_never_answers_fails_in_time_and_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    fake = tmp_path / "hung-chromium"
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    fake.chmod(0o755)
    started = time.monotonic()
    message = start_error(str(fake), timeout=1)
    assert "no reply to Browser.getVersion within 1" in message
    assert time.monotonic() - started < 10
    assert not Path(f"/proc/{pid_file.read_text().strip()}").exists()  # killed and reaped


def live_processes_in_group(group: int) -> list[int]:
    """Processes of a process group that are not zombies (fields 3 and 5 of stat)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            found.append(int(stat.parent.name))
    return found


def test_the_browser_and_its_helpers_are_killed_when_the_block_ends() -> None:
    with open_browser() as running:
        group = running.proc.pid  # it leads a group of its own
        assert live_processes_in_group(group), "chromium should be running in the block"
    assert running.proc.returncode is not None
    deadline = time.monotonic() + 5
    while live_processes_in_group(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_processes_in_group(group) == []
