"""``manage.py dev_banner --port N``: once the development server answers, print where to go and who to log in as.

``make run`` starts it beside ``runserver``, so that the last thing on the screen after start-up is
the URLs and the demo logins, not the server's own start-up lines among the generator's.
"""

from __future__ import annotations

import os
import socket
import time

from django.core.management.base import BaseCommand, CommandError

from billing_app.models import Account
from techbirdsfly.seeding import DEMO_PASSWORD, STAFF_EMAIL, demo_email


def wait_listening(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def owned(email: str) -> str:
    ids = list(Account.objects.filter(owner__email=email).order_by("pk").values_list("pk", flat=True)[:5])
    if not ids:
        return "no accounts"
    return ("owns account " if len(ids) == 1 else "owns accounts ") + ", ".join(map(str, ids))


class Command(BaseCommand):
    help = "Wait for the development server on 127.0.0.1:PORT, then print its URLs and the demo logins."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server")

    def handle(self, *args, port: int, timeout: float, **options) -> None:
        if not wait_listening(port, timeout):
            raise CommandError(f"the server did not start listening on 127.0.0.1:{port} within {timeout:g} s")
        base = f"http://127.0.0.1:{port}"
        admin = os.environ.get("DJANGO_SUPERUSER_EMAIL")
        lines = [
            "",
            f"TechBirdsFly is up: {base}/",
            f"  API docs      {base}/api/docs/",
            f"  dashboard     {base}/dashboard/   (staff)",
            f"  health        {base}/api/health",
            f"  Django admin  {base}/admin/   (staff)",
            "Logins (API: POST /api/auth/login, then Authorization: Bearer <accessToken>):",
        ]
        if admin:
            lines.append(f"  {admin} / {os.environ.get('DJANGO_SUPERUSER_PASSWORD', '')}   superuser")
        lines += [
            f"  {STAFF_EMAIL} / {DEMO_PASSWORD}   staff",
            f"  {demo_email(0)} / {DEMO_PASSWORD}   {owned(demo_email(0))}",
            f"  {demo_email(1)} / {DEMO_PASSWORD}   {owned(demo_email(1))}",
            "Ctrl-C stops the server and the generator.",
            "",
        ]
        self.stdout.write("\n".join(lines))
