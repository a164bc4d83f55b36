"""``/`` is a landing page that points at the docs, the dashboard, the health check and the admin."""

from __future__ import annotations

import re

from django.test import TestCase


class LandingPageTests(TestCase):
    def test_it_links_to_the_docs_dashboard_health_and_admin(self):
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response["Content-Type"].startswith("text/html"))
        links = set(re.findall(r'href="(/[^"]*)"', response.content.decode()))
        for path in ("/api/docs/", "/api/schema/", "/dashboard/", "/api/health", "/admin/"):
            self.assertIn(path, links)

    def test_no_link_leads_to_a_404(self):
        links = re.findall(r'href="(/[^"]*)"', self.client.get("/").content.decode())
        for path in [link for link in links if not link.startswith("/static/")]:
            with self.subTest(path=path):
                # The dashboard and the admin send anonymous visitors to the login page.
                self.assertIn(self.client.get(path).status_code, (200, 302))

    def test_the_admins_view_site_link_leads_here(self):
        from django.contrib import admin

        self.assertEqual(self.client.get(admin.site.site_url).status_code, 200)

    def test_only_safe_methods(self):
        self.assertEqual(self.client.post("/").status_code, 405)
