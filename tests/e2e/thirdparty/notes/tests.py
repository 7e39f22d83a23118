import json

from django.test import TestCase
from django.urls import reverse

from .models import Note, Notebook


class NotebookModelTests(TestCase):
    def test_slug_is_derived_from_title(self):
        notebook = Notebook.objects.create(title="Reading List")
        self.assertEqual(notebook.slug, "reading-list")

    def test_notebooks_are_ordered_by_title(self):
        Notebook.objects.create(title="Zebra")
        Notebook.objects.create(title="Apple")
        self.assertEqual(list(Notebook.objects.values_list("title", flat=True)), ["Apple", "Zebra"])


class NoteModelTests(TestCase):
    def setUp(self):
        self.notebook = Notebook.objects.create(title="Inbox")

    def test_pinned_and_urgent_notes_come_first(self):
        low = self.notebook.notes.create(title="low", priority=Note.Priority.LOW)
        high = self.notebook.notes.create(title="high", priority=Note.Priority.HIGH)
        pinned = self.notebook.notes.create(title="pinned", pinned=True)
        self.assertEqual(list(self.notebook.notes.all()), [pinned, high, low])

    def test_deleting_a_notebook_deletes_its_notes(self):
        self.notebook.notes.create(title="doomed")
        self.notebook.delete()
        self.assertFalse(Note.objects.exists())

    def test_as_dict_uses_the_priority_label(self):
        note = self.notebook.notes.create(title="x", priority=Note.Priority.HIGH)
        self.assertEqual(note.as_dict()["priority"], "high")


class PageTests(TestCase):
    fixtures = ("sample.json",)

    def test_index_lists_notebooks_with_the_hashed_stylesheet(self):
        response = self.client.get(reverse("index"))
        self.assertContains(response, "Groceries")
        stylesheet = r'href="/static/notes/notes\.[0-9a-f]{12}\.css"'
        self.assertRegex(response.content.decode(), stylesheet)


class ApiTests(TestCase):
    fixtures = ("sample.json",)

    def test_health_reports_the_database(self):
        response = self.client.get(reverse("healthz"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["status"], "ok")

    def test_notebook_list_counts_notes(self):
        response = self.client.get(reverse("notes:notebook-list"))
        counts = {nb["slug"]: nb["notes"] for nb in response.json()["results"]}
        self.assertEqual(counts, {"groceries": 2, "work": 1})

    def test_unknown_notebook_is_404(self):
        response = self.client.get(reverse("notes:notebook-detail", args=["nope"]))
        self.assertEqual(response.status_code, 404)

    def test_pinned_filter(self):
        url = reverse("notes:note-list", args=["groceries"])
        response = self.client.get(url, {"pinned": "1"})
        self.assertEqual([n["title"] for n in response.json()["results"]], ["Coffee beans"])

    def test_create_note(self):
        url = reverse("notes:note-list", args=["work"])
        response = self.client.post(
            url,
            json.dumps({"title": "Book travel", "priority": "low"}),
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.json()["priority"], "low")
        self.assertEqual(Notebook.objects.get(slug="work").notes.count(), 2)

    def test_create_note_validates_input(self):
        url = reverse("notes:note-list", args=["work"])
        response = self.client.post(
            url, json.dumps({"priority": "urgent"}), content_type="application/json"
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(set(response.json()["errors"]), {"title", "priority"})

    def test_delete_note(self):
        response = self.client.delete(reverse("notes:note-detail", args=[1]))
        self.assertEqual(response.status_code, 204)
        self.assertFalse(Note.objects.filter(pk=1).exists())
