"""Operations endpoints and the error shapes every endpoint shares."""

from __future__ import annotations

import re

from techbirdsfly.testing import CacheTestCase


class HealthTests(CacheTestCase):
    def test_health_up(self):
        response = self.api.get("/api/health")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok", "database": "up", "cache": "up"})


class SchemaTests(CacheTestCase):
    def test_openapi_schema(self):
        response = self.api.get("/api/schema/?format=json")
        self.assertEqual(response.status_code, 200)
        schema = response.json()
        self.assertTrue(schema["openapi"].startswith("3."))
        self.assertIn("/api/auth/login", schema["paths"])
        self.assertIn("bearerAuth", schema["components"]["securitySchemes"])

    def test_docs_page_loads_nothing_from_a_cdn(self):
        response = self.api.get("/api/docs/")
        self.assertEqual(response.status_code, 200)
        html = response.content.decode()
        self.assertIn("swagger-ui", html)
        external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
        self.assertEqual(external, [])


class ErrorShapeTests(CacheTestCase):
    def test_unknown_path_is_json_404(self):
        response = self.api.get("/api/nowhere")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"detail": "Not found."})

    def test_malformed_json_is_400_with_a_message(self):
        response = self.api.generic("POST", "/api/auth/login", "{not json", content_type="application/json")
        self.assertEqual(response.status_code, 400)
        self.assertIn("JSON parse error", response.json()["detail"])

    def test_missing_token_is_401_with_a_bearer_challenge(self):
        response = self.api.get("/api/auth/me")
        self.assertEqual(response.status_code, 401)
        self.assertTrue(response["WWW-Authenticate"].startswith("Bearer"))
