"""A small headless-Chromium client for the report tests, over the DevTools protocol.

Why not Playwright: its driver is pinned to its own Chromium builds, a heavy download,
while Debian's ``chromium`` speaks the same protocol (CDP) over a pipe: with
``--remote-debugging-pipe`` it reads JSON commands, each ending in a NUL byte, on fd 3
and writes replies and events the same way on fd 4. Every wait has a deadline (a hung
browser fails the test with a message, it never hangs CI), and the browser's process
group is killed when the ``open_browser`` block ends, however it ends.

The browser is kept off the network: background services are off, every host name
resolves to nothing, and every connection goes to a proxy port nobody listens on, so a
page that asks for the internet reaches nothing; the test only sees that it asked.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

CHROMIUM_ENV = "READINESS_CHROMIUM"
FLAGS = (
    *("--headless", "--disable-gpu", "--remote-debugging-pipe"),
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    *("--no-first-run", "--no-default-browser-check", "--disable-default-apps"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
    *("--disable-extensions", "--metrics-recording-only"),
    "--host-resolver-rules=MAP * ~NOTFOUND",
    # Address literals skip the resolver: they go to the dead proxy, as does loopback.
    *("--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"),
)

Message = dict[str, Any]


class BrowserError(RuntimeError):
    """Chromium could not start, answered with an error, or did not answer in time."""


class Page:
    """One tab showing one local file, loaded. ``requests`` holds what Chromium reported
    up to the last exchange with it (events are read while waiting for a reply)."""

    def __init__(self, browser: Browser, session: str, url: str) -> None:
        self.browser, self.session, self.url = browser, session, url
        self.requests: list[str] = []  # every URL asked for, but the page's own and data:
        self.loaded: set[str] = set()  # loaders (navigations) whose load event fired

    def on_event(self, method: str, params: Message) -> None:
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if url != self.url and not url.startswith("data:"):
                self.requests.append(url)
        elif method == "Page.lifecycleEvent" and params["name"] == "load":
            self.loaded.add(params["loaderId"])

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (a promise is awaited)."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        reply = self.browser.call("Runtime.evaluate", params, self.session)
        if "exceptionDetails" in reply:
            thrown = reply["exceptionDetails"].get("exception", {}).get("description")
            raise BrowserError(f"{expression!r} threw: {thrown or reply['exceptionDetails']}")
        return reply["result"].get("value")

    @property
    def scroll_width(self) -> int:
        """How wide the document is; wider than ``inner_width`` means a sideways scroll."""
        return int(self.evaluate("document.documentElement.scrollWidth"))

    @property
    def inner_width(self) -> int:
        """The window's width, vertical scrollbar included."""
        return int(self.evaluate("window.innerWidth"))

    @property
    def client_width(self) -> int:
        """The width the window gives the page: ``inner_width`` less a vertical scrollbar
        (15 px here), so the stricter bound for a page that should not scroll sideways."""
        return int(self.evaluate("document.documentElement.clientWidth"))

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """A PNG of the whole page (or of the window only), for a human to look at."""
        # Only the tab in front draws frames; a capture of another waits forever.
        self.browser.call("Page.bringToFront", {}, self.session)
        params: Message = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.browser.call("Page.getLayoutMetrics", {}, self.session)["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "scale": 1}
            params["clip"].update(width=size["width"], height=size["height"])
        reply = self.browser.call("Page.captureScreenshot", params, self.session)
        path.write_bytes(base64.b64decode(reply["data"]))
        return path


class Browser:
    """A running Chromium and its two pipes, made by ``open_browser``."""

    def __init__(
        self, proc: subprocess.Popen[bytes], to_browser: int, log: Path, timeout: float
    ) -> None:
        self.proc, self.to_browser, self.log, self.timeout = proc, to_browser, log, timeout
        self.messages: queue.Queue[Message | None] = queue.Queue()  # None: the pipe closed
        self.pages: dict[str, Page] = {}
        self.last_id = 0

    def read_from(self, fd: int) -> None:
        """The reader thread's loop: the byte stream, cut at each NUL into messages."""
        buffer = b""
        try:
            while chunk := os.read(fd, 1 << 16):
                *complete, buffer = (buffer + chunk).split(b"\0")
                for raw in complete:
                    self.messages.put(json.loads(raw))
        finally:
            self.messages.put(None)

    def call(self, method: str, params: Message, session: str | None = None) -> Any:
        """Send one command (to a page's session, if given) and return its result."""
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        with suppress(OSError):  # a closed pipe: the wait says how Chromium ended
            os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        reply = self.wait_for(lambda m: m.get("id") == message["id"], f"reply to {method}")
        if "error" in reply:
            raise BrowserError(f"{method} failed: {reply['error'].get('message')}")
        return reply.get("result", {})

    def wait_for(self, done: Callable[[Message], bool], what: str) -> Message:
        """Read messages until one is ``done``; events on the way go to their page."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BrowserError(f"chromium sent no {what} within {self.timeout} s") from None
            if message is None:
                self.messages.put(None)  # for any later wait too
                tail = self.log.read_text(errors="replace")[-2000:]
                code = self.proc.poll()
                raise BrowserError(f"chromium exited (code {code}) before the {what}:\n{tail}")
            if done(message):
                return message
            page = self.pages.get(message.get("sessionId", ""))
            if page is not None and "method" in message:
                page.on_event(message["method"], message.get("params", {}))

    def open(self, path: Path, width: int = 1366, height: int = 900) -> Page:
        """A new tab, ``width`` x ``height`` CSS pixels, showing ``path`` once loaded.

        The tab starts blank so that request recording is on before the page asks for
        anything; the wait is for the load of this navigation's own loader."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attach = {"targetId": target, "flatten": True}
        session = self.call("Target.attachToTarget", attach)["sessionId"]
        page = self.pages[session] = Page(self, session, path.resolve().as_uri())
        for method in ("Network.enable", "Page.enable"):
            self.call(method, {}, session)
        self.call("Page.setLifecycleEventsEnabled", {"enabled": True}, session)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics, session)
        navigation = self.call("Page.navigate", {"url": page.url}, session)
        if navigation.get("errorText"):
            raise BrowserError(f"cannot open {path}: {navigation['errorText']}")
        loader = navigation["loaderId"]
        self.wait_for(lambda _: loader in page.loaded, f"load event of {path}")
        return page


def chromium_executable() -> str:
    """``$READINESS_CHROMIUM``, else Debian's ``chromium``."""
    return os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"


def _high(fd: int) -> int:
    """``fd`` renumbered to 5 or more (close-on-exec), so that moving the two ends to 3
    and 4 in the child cannot overwrite one with the other."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(fd)
    return copy


@contextmanager
def open_browser(executable: str | None = None, timeout: float = 30) -> Iterator[Browser]:
    """A fresh headless Chromium, with an empty profile of its own, for the block.

    ``timeout``: the longest wait for any one reply or load, in seconds."""
    executable = executable or chromium_executable()
    with tempfile.TemporaryDirectory(prefix="readiness-chromium-") as profile:
        commands, to_browser = map(_high, os.pipe())
        from_browser, replies = map(_high, os.pipe())

        def onto_fds_3_and_4() -> None:  # Popen's pass_fds keeps fds at their own numbers
            os.dup2(commands, 3)  # dup2's copies survive exec; the originals do not
            os.dup2(replies, 4)

        log = Path(profile) / "chromium.log"
        try:
            with log.open("wb") as log_file:
                proc = subprocess.Popen(
                    [executable, *FLAGS, f"--user-data-dir={profile}/data", "about:blank"],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    close_fds=False,  # else 3 and 4 would be closed after the move
                    preexec_fn=onto_fds_3_and_4,
                    start_new_session=True,  # a group of its own, killed as one
                )
        except OSError as error:
            os.close(to_browser)
            os.close(from_browser)
            raise BrowserError(
                f"cannot start chromium {executable!r}: {error}. Install Debian's chromium "
                f"(`make setup` does) or set {CHROMIUM_ENV} to a Chromium executable."
            ) from error
        finally:
            os.close(commands)
            os.close(replies)
        browser = Browser(proc, to_browser, log, timeout)
        reader = threading.Thread(target=browser.read_from, args=(from_browser,), daemon=True)
        reader.start()
        try:
            browser.call("Browser.getVersion", {})  # it started and it answers
            yield browser
        finally:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            os.close(to_browser)
            reader.join(timeout=10)  # ends at the end of the stream, once the group is gone
            if not reader.is_alive():
                os.close(from_browser)
