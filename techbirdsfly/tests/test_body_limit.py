"""A body over the limit answers 413 naming the limit, and is logged in one line, not a traceback."""

from __future__ import annotations

import json

from django.conf import settings
from django.test import override_settings

from techbirdsfly.testing import CacheTestCase


class BodyLimitTests(CacheTestCase):
    def post_big(self, path: str, size: int):
        body = json.dumps({"email": "big@example.com", "password": "wrong", "padding": "x" * size})
        return self.client.post(path, body, content_type="application/json")

    def test_a_2_mb_body_answers_413_naming_the_limit_in_one_log_line(self):
        for path in ("/api/auth/login", "/api/billing/usage", "/admin/login/"):
            with self.subTest(path=path), self.assertLogs(level="DEBUG") as logs:
                response = self.post_big(path, 2 * 1024 * 1024)
                self.assertEqual(response.status_code, 413)
                self.assertEqual(
                    response.json(),
                    {"detail": f"Request body too large (limit {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)."},
                )
            lines = [record for record in logs.records if record.levelno >= 30]
            self.assertEqual(len(lines), 1, logs.output)
            self.assertIsNone(lines[0].exc_info)
            self.assertIn(path, lines[0].getMessage())

    @override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
    def test_the_limit_is_the_setting(self):
        self.assertEqual(self.post_big("/api/auth/login", 2000).status_code, 413)
        self.assertEqual(self.post_big("/api/auth/login", 100).status_code, 401)  # read, and refused as a login

    def test_a_body_within_the_limit_is_read(self):
        self.assertEqual(self.post_big("/api/auth/login", 1000).status_code, 401)
