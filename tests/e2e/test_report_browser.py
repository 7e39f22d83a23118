"""The reports of a real single + cluster run, as a person sees them: in headless Chromium.

Two real deploys on a lab of their own (prefix ``rb``), then the comparison, both run
reports and the history are opened at a laptop's 1366 px and checked against the run
directories they were rendered from: what the pages say must be what the runs recorded,
the pages must work offline (no request leaves them) and must not scroll sideways. The
screenshot of the comparison is left in the test's temporary folder for a human.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.testcases import read_cases
from tests.browser import Browser, Page, open_browser
from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import Run, broker_inventories, lab_workdir, run_readiness

pytestmark = pytest.mark.e2e

PREFIX = "rb"
SUBNET = "10.213.81.0/24"
SINGLE, CLUSTER = broker_inventories(PREFIX, SUBNET)
PNG = b"\x89PNG\r\n\x1a\n"

# Elements that reach past the right edge of the window, for a failure message.
OVERFLOWING = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth)
  .slice(0, 5)
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
            + (typeof e.className === 'string' && e.className ? '.' + e.className : '')
            + ' to ' + Math.round(e.getBoundingClientRect().right) + ' px')"""


@dataclass(frozen=True)
class Runs:
    """The two runs, in the order they ran, and the reports folder they share."""

    single: Run
    cluster: Run
    reports: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    with lab_workdir(tmp_path_factory.mktemp("report-browser"), PREFIX) as workdir:
        single = run_readiness(workdir, "single", SINGLE)
        cluster = run_readiness(workdir, "cluster", CLUSTER)
        for run in (single, cluster):
            # Whatever the verdict, the pages must show it; but without test cases there
            # would be no matrix to check.
            assert kept_tests(run), f"no test cases recorded:\n{run.diagnostics()}"
        yield Runs(single, cluster, workdir / "reports")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with open_browser() as running:
        yield running


@pytest.fixture(scope="module")
def pages(runs: Runs, browser: Browser) -> dict[str, Page]:
    """Every page a person opens after the two runs, by name, loaded at 1366 x 900."""
    files = {
        "index.html": runs.reports / "index.html",
        "single report.html": runs.single.run_dir / "report.html",
        "cluster report.html": runs.cluster.run_dir / "report.html",
        "history.html": runs.reports / "history.html",
    }
    return {name: browser.open(path, width=1366, height=900) for name, path in files.items()}


def kept_tests(run: Run) -> set[str]:
    """``<layer> <test id>`` of every test the run kept (an earlier attempt of a retried
    test is not a test of its own)."""
    cases = read_cases(run.run_dir, run.record["tests_file"])
    return {f"{case.layer} {case.id}" for case in cases if case.status != "retried"}


def verdict_classes(page: Page, scope: str) -> list[list[str]]:
    """The classes of the (first) verdict badge inside each element matching ``scope``."""
    classes: list[list[str]] = page.evaluate(
        f"[...document.querySelectorAll({json.dumps(scope)})]"
        ".map(e => [...(e.querySelector('span.verdict')?.classList ?? [])])"
    )
    return classes


def test_the_comparison_shows_both_topologies_all_on_one_first_with_their_verdicts(
    runs: Runs, pages: dict[str, Page]
) -> None:
    index = pages["index.html"]
    sides = index.evaluate(
        "[...document.querySelectorAll('.topology')]"
        ".map(e => [e.dataset.topology, e.dataset.inventory])"
    )
    single, cluster = runs.single.record, runs.cluster.record
    assert sides == [["all-on-one", single["inventory"]], ["distributed", cluster["inventory"]]]
    assert verdict_classes(index, ".topology") == [
        ["verdict", single["verdict"]],
        ["verdict", cluster["verdict"]],
    ]


def test_the_matrix_has_one_row_for_every_test_of_both_runs(
    runs: Runs, pages: dict[str, Page]
) -> None:
    expected = kept_tests(runs.single) | kept_tests(runs.cluster)
    rows: list[str] = pages["index.html"].evaluate(
        "[...document.querySelectorAll('#test-matrix tr[data-test]')].map(tr => tr.dataset.test)"
    )
    assert len(rows) == len(set(rows)), "a test has more than one row"
    missing, extra = sorted(expected - set(rows)), sorted(set(rows) - expected)
    assert (missing, extra) == ([], []), f"{len(expected)} tests in the runs"
    assert len(expected) >= 75  # three layers of the broker, 25 tests or more each


def test_typing_a_test_id_in_the_filter_narrows_the_matrix_to_it(
    runs: Runs, browser: Browser
) -> None:
    """The filter is the page's only script: it must run in a real browser. A tab of its
    own, so that the other tests (and the screenshot) see the page as it opens."""
    index = browser.open(runs.reports / "index.html")
    wanted = min(key for key in kept_tests(runs.single) if key.startswith("rest-"))
    shown = index.evaluate(
        f"""(() => {{
          const box = document.getElementById('test-filter');
          box.value = {json.dumps(wanted)};
          box.dispatchEvent(new Event('input', {{bubbles: true}}));
          return [...document.querySelectorAll('#test-matrix tr[data-test]')]
            .filter(tr => tr.checkVisibility()).map(tr => tr.dataset.test);
        }})()"""
    )
    assert wanted in shown
    assert len(shown) < len(kept_tests(runs.single)) / 10, shown
    assert index.evaluate("document.getElementById('what-differs') !== null")


@pytest.mark.parametrize("name", ["single", "cluster"])
def test_a_run_report_shows_its_verdict_and_the_command_to_reproduce_it(
    runs: Runs, pages: dict[str, Page], name: str
) -> None:
    run = runs.single if name == "single" else runs.cluster
    report = pages[f"{name} report.html"]
    # The run's own verdict is the first on its page (a heading, before any detail).
    assert verdict_classes(report, "body")[0] == ["verdict", run.record["verdict"]]
    command = report.evaluate("document.getElementById('reproduce')?.textContent ?? null")
    assert command == run.record["command"] and command


def test_the_history_lists_both_runs_newest_first(runs: Runs, pages: dict[str, Page]) -> None:
    listed = pages["history.html"].evaluate(
        "[...document.querySelectorAll('#history tr[data-run]')].map(tr => tr.dataset.run)"
    )
    assert listed == [runs.cluster.record["run_id"], runs.single.record["run_id"]]


def test_no_page_asks_for_anything_over_the_network(pages: dict[str, Page]) -> None:
    """A report is read where it was copied to: a ticket, a laptop on a plane, a host
    with no internet. Anything it fetches is missing there (and leaks that it was read)."""
    asking = {name: page.requests for name, page in pages.items() if page.requests}
    assert asking == {}


def test_no_page_is_wider_than_a_laptop_window(pages: dict[str, Page]) -> None:
    """Compared with the width the window gives the page (less its vertical scrollbar):
    a page exactly as wide as the whole window already scrolls sideways."""
    too_wide = {
        name: f"{page.scroll_width} px in {page.client_width} px: {page.evaluate(OVERFLOWING)}"
        for name, page in pages.items()
        if page.scroll_width > page.client_width
    }
    assert too_wide == {}
    assert {page.inner_width for page in pages.values()} == {1366}


def test_a_screenshot_of_the_comparison_is_left_for_a_human(
    pages: dict[str, Page], tmp_path: Path
) -> None:
    shot = pages["index.html"].screenshot(tmp_path / "index.png")
    print(f"screenshot of the comparison: {shot}")
    data = shot.read_bytes()
    assert data.startswith(PNG) and len(data) > 20_000, len(data)
