"""mysite over real HTTP, against the fixture data (../fixtures/notes.json)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from conftest import Http


def test_health(http: Http, record_testsuite_property: Callable[[str, object], None]) -> None:
    reply = http.get("/healthz")
    assert reply.status == 200
    assert reply.json()["status"] == "ok"
    # In the JUnit report: which database the deployed server really talks to.
    record_testsuite_property("server_database", reply.json()["database"])


def test_fixture_notebooks_are_served(http: Http) -> None:
    reply = http.get("/api/v1/notebooks/")
    assert reply.status == 200
    counts = {nb["slug"]: nb["notes"] for nb in reply.json()["results"]}
    assert counts == {"reading": 2, "travel": 1}


def test_notebook_detail(http: Http) -> None:
    reply = http.get("/api/v1/notebooks/travel/")
    assert reply.status == 200
    assert reply.json()["title"] == "Travel"


def test_unknown_notebook_is_404(http: Http) -> None:
    assert http.get("/api/v1/notebooks/does-not-exist/").status == 404


def test_pinned_notes_come_first(http: Http) -> None:
    reply = http.get("/api/v1/notebooks/reading/notes/")
    assert reply.status == 200
    titles = [n["title"] for n in reply.json()["results"]]
    assert titles == ["The Left Hand of Darkness", "Dune"]


def test_create_read_and_delete_a_note(http: Http) -> None:
    title = f"it-{uuid.uuid4().hex[:8]}"
    created = http.post("/api/v1/notebooks/travel/notes/", {"title": title, "priority": "high"})
    assert created.status == 201, created.body
    note = created.json()
    assert http.get(f"/api/v1/notes/{note['id']}/").json()["title"] == title
    assert http.delete(f"/api/v1/notes/{note['id']}/").status == 204
    assert http.get(f"/api/v1/notes/{note['id']}/").status == 404


def test_invalid_note_is_rejected(http: Http) -> None:
    reply = http.post("/api/v1/notebooks/travel/notes/", {"title": ""})
    assert reply.status == 400
    assert "title" in reply.json()["errors"]


def test_wrong_method_is_405(http: Http) -> None:
    assert http.request("PUT", "/api/v1/notes/1/").status == 405


def test_index_page_links_the_collected_stylesheet(http: Http) -> None:
    # The manifest storage names the file by its hash: only collectstatic knows it, and
    # without its manifest the page is a 500.
    reply = http.get("/")
    assert reply.status == 200, reply.body[-2000:]
    page = reply.body.decode()
    assert "Reading" in page and "Travel" in page
    assert re.search(r'href="/static/notes/notes\.[0-9a-f]{12}\.css"', page), page
