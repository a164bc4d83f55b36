"""docs/API.md and the OpenAPI schema list the same endpoints.

Every method and path the schema serves is documented, and every documented one is served. The
only documented endpoints outside the schema are the landing page, the schema and its page themselves
and /metrics (plain Django views, not API operations). Path parameters are compared by position only: the
schema names them ``{account_id}``, the contract ``{accountId}``.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from techbirdsfly.testing import CacheTestCase

API_DOC = Path(settings.BASE_DIR) / "docs" / "API.md"
NOT_IN_SCHEMA = {("GET", "/"), ("GET", "/api/schema/"), ("GET", "/api/docs/"), ("GET", "/metrics")}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A table row whose first cell is "METHOD[/METHOD...] /path[?query]".
ROW = re.compile(r"^\|\s*((?:GET|POST|PUT|PATCH|DELETE)(?:/(?:GET|POST|PUT|PATCH|DELETE))*)\s+(/[^\s?|]*)")


def shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def documented() -> set[tuple[str, str]]:
    endpoints = set()
    for line in API_DOC.read_text().splitlines():
        if match := ROW.match(line):
            methods, path = match.groups()
            endpoints |= {(method, shape(path)) for method in methods.split("/")}
    return endpoints


class ApiDocTests(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        response = self.api.get("/api/schema/?format=json")
        self.assertEqual(response.status_code, 200)
        self.served = {
            (method.upper(), shape(path))
            for path, operations in response.json()["paths"].items()
            for method in operations
            if method.upper() in METHODS
        }
        self.documented = documented()

    def test_the_doc_is_parsed(self):
        self.assertIn(("POST", "/api/auth/login"), self.documented)
        self.assertIn(("PUT", "/api/users/{}/preferences"), self.documented)
        self.assertIn(("GET", "/api/admin/cache/{}/keys"), self.documented)
        self.assertGreater(len(self.documented), 20)

    def test_every_served_endpoint_is_documented(self):
        self.assertEqual(self.served - self.documented, set())

    def test_every_documented_endpoint_is_served(self):
        self.assertEqual(self.documented - NOT_IN_SCHEMA - self.served, set())

    def test_the_exceptions_are_documented_and_answer(self):
        self.assertLessEqual(NOT_IN_SCHEMA, self.documented)
        for _, path in NOT_IN_SCHEMA:
            self.assertEqual(self.api.get(path).status_code, 200, path)

    def test_the_readme_links_the_doc_in_the_repository(self):
        readme = (Path(settings.BASE_DIR) / "README.md").read_text()
        self.assertIn("(docs/API.md)", readme)
        self.assertNotIn("../shared/API.md", readme)
