"""Django's own tests of the resets project (a server layer can run them)."""

from django.test import TestCase


class ViewsTests(TestCase):
    def test_health_reads_the_database(self) -> None:
        response = self.client.get("/health")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["status"], "ok")

    def test_ok_reads_a_posted_body(self) -> None:
        response = self.client.post("/ok", b"x" * 1000, content_type="application/octet-stream")
        self.assertEqual(response.content, b"ok 1000\n")
