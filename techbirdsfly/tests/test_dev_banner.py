"""``make run`` ends its start-up with the URLs and the demo logins, once the server listens."""

from __future__ import annotations

import io
import os
import socket
from unittest import mock

from django.core.management import CommandError, call_command
from django.test import TestCase

from auth_app.tests.factories import make_user
from billing_app.tests.factories import make_account
from techbirdsfly.seeding import DEMO_PASSWORD, STAFF_EMAIL, demo_email
from techbirdsfly.servers import free_port


class DevBannerTests(TestCase):
    def test_it_prints_the_urls_and_logins_with_the_accounts_each_owns(self):
        first = make_account(make_user(email=demo_email(0)))
        second = make_user(email=demo_email(1))
        accounts = [make_account(second), make_account(second)]
        out = io.StringIO()
        admin = {"DJANGO_SUPERUSER_EMAIL": "admin@example.com", "DJANGO_SUPERUSER_PASSWORD": "admin-pw"}
        with socket.socket() as listening, mock.patch.dict(os.environ, admin):
            listening.bind(("127.0.0.1", 0))
            listening.listen()
            port = listening.getsockname()[1]
            call_command("dev_banner", port=port, stdout=out)
        text = out.getvalue()
        for path in ("/api/docs/", "/dashboard/", "/api/health", "/admin/"):
            self.assertIn(f"http://127.0.0.1:{port}{path}", text)
        self.assertIn("admin@example.com / admin-pw", text)
        self.assertIn(f"{STAFF_EMAIL} / {DEMO_PASSWORD}", text)
        self.assertIn(f"{demo_email(0)} / {DEMO_PASSWORD}   owns account {first.pk}\n", text)
        self.assertIn(f"owns accounts {accounts[0].pk}, {accounts[1].pk}", text)

    def test_it_gives_up_saying_so_when_nothing_listens(self):
        with self.assertRaisesMessage(CommandError, "did not start listening"):
            call_command("dev_banner", port=free_port(), timeout=0.3, stdout=io.StringIO())
