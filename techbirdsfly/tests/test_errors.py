"""API paths answer JSON errors in every mode, debug mode (``make run``) included."""

from __future__ import annotations

from django.test import override_settings
from django.urls import include, path

from techbirdsfly.testing import CacheTestCase


def _explode(request):
    raise RuntimeError("boom")


# The project's URLs plus one view that fails, to see the 500 page debug mode would show.
urlpatterns = [path("api/test-explode", _explode), path("", include("techbirdsfly.urls"))]


@override_settings(DEBUG=True)
class DebugModeErrorTests(CacheTestCase):
    def assert_json_error(self, response, status: int, detail: str) -> None:
        self.assertEqual(response.status_code, status)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(response.json(), {"detail": detail})

    def test_a_non_integer_id_is_a_json_404(self):
        self.assert_json_error(self.api.get("/api/billing/summary/abc"), 404, "Not found.")

    def test_an_unknown_api_path_is_a_json_404(self):
        for url in ("/api/nowhere", "/api/", "/api/auth/", "/api/images/1/nothing"):
            with self.subTest(url=url):
                self.assert_json_error(self.api.get(url), 404, "Not found.")

    @override_settings(ROOT_URLCONF=__name__)
    def test_an_exception_is_a_json_500(self):
        self.api.raise_request_exception = False
        self.assert_json_error(self.api.get("/api/test-explode"), 500, "Internal server error.")

    def test_pages_outside_the_api_keep_the_debug_page(self):
        response = self.api.get("/nowhere")
        self.assertEqual(response.status_code, 404)
        self.assertIn("text/html", response["Content-Type"])


class ProductionModeErrorTests(CacheTestCase):
    def test_a_non_integer_id_is_a_json_404(self):
        response = self.api.get("/api/billing/summary/abc")
        self.assertEqual((response.status_code, response.json()), (404, {"detail": "Not found."}))
