"""Abuse: who may call what, and what user input can reach in Redis — against gunicorn.

- The access matrix: every endpoint as an anonymous caller, another user, the owner and staff,
  with API.md's rules (401 first; then 403 for a staff-only endpoint before any lookup; then 404
  for an object the caller may not see, with the same answer as for an id that does not exist).
  Each row is requested twice, the owner first, so the second pass runs on cache hits: a cached
  object must be as invisible to another user as an uncached one.
- Cache keys: every key in Redis after a run over every endpoint has its app's prefix, a TTL and
  a shape built from ids and hashes only; a key listing's ``match`` glob cannot reach outside its
  app; clearing one app leaves the others' keys.
- Secrets: no token, refresh token, password or SECRET_KEY in any key or value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.test import tag

from auth_app.models import User
from auth_app.services import token_pair_issue
from billing_app.tests.factories import make_invoice, make_usage
from faults.load import Reply, request
from faults.tests.support import make_actor, make_actors
from techbirdsfly.cache import APPS
from techbirdsfly.testing import GunicornTestCase

ROLES = ("anonymous", "other", "owner", "staff")
SECRET_KEY = "test-only-secret-key-for-server-processes-0123456789"  # techbirdsfly.testing.server_env
PASSWORD = "matrix password that is long enough 42"
KEY_SHAPE = re.compile(
    r"^(?P<prefix>[A-Za-z]+)_(?P<app>auth|billing|admin|image|user):[a-z_-]+"
    r"(:(\d{1,19}|[0-9a-f]{64}|\d{4}-\d{2}))*(:gen|:lock(:\d+)?)?$"
)


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expected: dict[str, int]  # role -> status
    body: dict | None = None
    twin: str | None = None  # the same request for an id that does not exist (404s must match)
    again: dict[str, int] | None = None  # statuses that change on the second pass (paid already)


def expect(anonymous: int, other: int, owner: int, staff: int) -> dict[str, int]:
    return dict(zip(ROLES, (anonymous, other, owner, staff), strict=True))


@tag("live")
class AccessMatrixTests(GunicornTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner, self.other = make_actors(2, tag="matrix")
        self.staff = make_actor(staff=True, tag="matrixstaff")
        self.actors = {"owner": self.owner, "other": self.other, "staff": self.staff}
        from billing_app.models import Account

        account = Account.objects.get(pk=self.owner.account_id)
        make_usage(account, units=5)
        self.invoice = make_invoice(account, amount="1.00")
        self.tokens_seen: set[str] = {a.token for a in self.actors.values()}

    def call(self, role: str, method: str, path: str, body: dict | None = None) -> Reply:
        token = None
        if role != "anonymous":
            # A fresh token per call: logout spends the one it is given.
            token = token_pair_issue(user=User.objects.get(pk=self.actors[role].user_id)).access_token
            self.tokens_seen.add(token)
        return request(self.server.url, method, path, token=token, body=body)

    def rows(self) -> list[Row]:
        o, missing = self.owner, 9_000_000_000
        usage = {"accountId": o.account_id, "metric": "api.call", "units": 1}
        prefs, image_patch = {"theme": "dark"}, {"status": "running"}
        account, pay = f"{o.account_id}", f"{o.account_id}/{self.invoice.pk}/pay"

        def owned(method: str, template: str, own: int, statuses: dict[str, int], body: dict | None = None) -> Row:
            # The same request for an id that does not exist must get the very same 404.
            return Row(method, template.format(own), statuses, body, twin=template.format(missing))

        return [
            Row("GET", "/api/auth/me", expect(401, 200, 200, 200)),
            Row("POST", "/api/auth/validate-token", expect(401, 200, 200, 200)),
            Row("POST", "/api/auth/logout", expect(401, 200, 200, 200)),
            Row("POST", "/api/billing/accounts", expect(401, 201, 201, 201), {"name": "n"}),
            owned("GET", "/api/billing/summary/{}", o.account_id, expect(401, 404, 200, 200)),
            owned("GET", "/api/billing/usage/{}", o.account_id, expect(401, 404, 200, 200)),
            owned("GET", "/api/billing/invoices/{}", o.account_id, expect(401, 404, 200, 200)),
            Row("POST", "/api/billing/usage", expect(401, 404, 201, 201), usage),
            Row("POST", f"/api/billing/invoices/{account}", expect(401, 403, 403, 201)),
            Row("POST", f"/api/billing/invoices/{pay}", expect(401, 403, 403, 200), again={"staff": 409}),
            Row("POST", f"/api/billing/invoices/{missing}/{self.invoice.pk}/pay", expect(401, 403, 403, 404)),
            Row("GET", "/api/admin/analytics/dashboard", expect(401, 403, 403, 200)),
            Row("GET", "/api/admin/cache/stats", expect(401, 403, 403, 200)),
            Row("GET", "/api/admin/cache/billing/keys", expect(401, 403, 403, 200)),
            Row("GET", "/api/admin/cache/nosuchapp/keys", expect(401, 403, 403, 404)),
            Row("DELETE", "/api/admin/cache/nosuchapp", expect(401, 403, 403, 404)),
            owned("GET", "/api/images/{}", o.image_id, expect(401, 404, 200, 200)),
            owned("GET", "/api/images/{}/result", o.image_id, expect(401, 404, 404, 404)),
            Row("PATCH", f"/api/images/{o.image_id}", expect(401, 403, 403, 200), image_patch),
            Row("PATCH", f"/api/images/{missing}", expect(401, 403, 403, 404), image_patch),
            owned("GET", "/api/users/{}/preferences", o.user_id, expect(401, 404, 200, 200)),
            owned("PATCH", "/api/users/{}/preferences", o.user_id, expect(401, 404, 200, 403), prefs),
            Row("PUT", f"/api/users/{o.user_id}/preferences", expect(401, 404, 400, 403), prefs),
        ]

    def test_every_endpoint_as_every_caller(self):
        owner_email = User.objects.get(pk=self.owner.user_id).email
        failures = []
        for attempt in ("cold", "warm"):
            for row in self.rows():
                for role in ("owner", "other", "staff", "anonymous"):
                    reply = self.call(role, row.method, row.path, row.body)
                    wanted = row.expected[role]
                    if attempt == "warm" and row.again:
                        wanted = row.again.get(role, wanted)
                    if reply.status != wanted or not reply.is_json:
                        failures.append(f"{attempt} {row.method} {row.path} as {role}: {reply.status}, wanted {wanted}")
                    if reply.status == 404 and row.twin and role != "anonymous":
                        twin = self.call(role, row.method, row.twin, row.body)
                        if (twin.status, twin.body) != (reply.status, reply.body):
                            failures.append(
                                f"{row.path} as {role}: {reply.body} differs from a missing id's {twin.body}"
                            )
                    if role == "other" and owner_email in str(reply.body):
                        failures.append(f"{row.path} as other: shows the owner's data {reply.body}")
        self.assertEqual(failures, [], "\n".join(failures))

    def test_invalid_expired_and_revoked_tokens_are_401_everywhere(self):
        revoked = self.call("owner", "GET", "/api/auth/me")  # warms the token record
        token = token_pair_issue(user=User.objects.get(pk=self.owner.user_id)).access_token
        self.assertEqual(request(self.server.url, "GET", "/api/auth/me", token=token).status, 200)
        self.assertEqual(request(self.server.url, "POST", "/api/auth/logout", token=token).status, 200)
        from django.utils import timezone

        from auth_app.models import AuthToken

        expired = token_pair_issue(user=User.objects.get(pk=self.staff.user_id)).access_token
        AuthToken.objects.filter(user_id=self.staff.user_id, kind="access").update(expires_at=timezone.now())
        for bad in (token, expired, "x" * 43, self.owner.token[:-1] + ("A" if self.owner.token[-1] != "A" else "B")):
            for row in self.rows():
                reply = request(self.server.url, row.method, row.path, token=bad, body=row.body)
                self.assertEqual(reply.status, 401, f"{row.method} {row.path} with a bad token: {reply.status}")
                self.assertTrue(reply.headers.get("www-authenticate", "").startswith("Bearer"))
        self.assertEqual(revoked.status, 200)

    # --- what user input can reach in Redis ------------------------------------------------------

    def touch_everything(self) -> None:
        for row in self.rows():
            for role in ("owner", "other", "staff"):
                self.call(role, row.method, row.path, row.body)
        for email in ("matrix.login@example.com", "MATRIX.LOGIN@example.com "):
            request(self.server.url, "POST", "/api/auth/register", body={"email": email, "password": PASSWORD})
            pair = request(self.server.url, "POST", "/api/auth/login", body={"email": email, "password": PASSWORD}).body
            if isinstance(pair, dict) and "accessToken" in pair:
                self.tokens_seen |= {pair["accessToken"], pair["refreshToken"]}
                token = pair["accessToken"]
                request(self.server.url, "GET", "/api/auth/me", token=token)
                refreshed = request(
                    self.server.url, "POST", "/api/auth/refresh", body={"refreshToken": pair["refreshToken"]}
                )
                self.tokens_seen |= {refreshed.body["accessToken"], refreshed.body["refreshToken"]}
                request(
                    self.server.url, "POST", "/api/auth/validate-token", body={"token": refreshed.body["accessToken"]}
                )
        request(
            self.server.url, "POST", "/api/auth/login", body={"email": "matrix.login@example.com", "password": "wrong"}
        )

    def test_every_key_is_an_apps_with_a_ttl_and_no_user_text(self):
        self.touch_everything()
        keys = sorted(key.decode() for key in self.redis.scan_iter(count=1000))
        self.assertGreater(len(keys), 10)
        prefixes = {f"{prefix}" for prefix in APPS.values()}
        for key in keys:
            with self.subTest(key=key):
                shape = KEY_SHAPE.match(key)
                self.assertIsNotNone(shape, "a key built from something other than ids and hashes")
                self.assertIn(shape["prefix"], prefixes)
                self.assertEqual(APPS[shape["app"]], shape["prefix"], "an app's key under another app's prefix")
                self.assertGreater(self.redis.ttl(key), 0, "a key without a TTL")

    def test_nothing_secret_in_redis(self):
        self.touch_everything()
        secrets = {t.encode() for t in self.tokens_seen} | {PASSWORD.encode(), SECRET_KEY.encode()}
        self.assertGreater(len(self.tokens_seen), 10)
        found = []
        for key in self.redis.scan_iter(count=1000):
            kind = self.redis.type(key).decode()
            values = [key]
            if kind == "string":
                values.append(self.redis.get(key) or b"")
            elif kind == "hash":
                values += [item for pair in self.redis.hgetall(key).items() for item in pair]
            else:
                values.append(kind.encode())
            for secret in secrets:
                if any(secret in value for value in values):
                    found.append(f"{key!r} holds {secret[:8]!r}...")
        self.assertEqual(found, [])

    def test_a_key_listing_glob_cannot_leave_its_app(self):
        self.touch_everything()
        staff = self.staff.token
        for app in APPS:
            for glob in ("*", "../*", "*_*", "[A-Z]*", "[", "\\", "*\\", "AuthService_*", "*Service_*", "?*", "[^B]*"):
                with self.subTest(app=app, glob=glob):
                    cursor, listed = "0", []
                    for _ in range(100):
                        path = f"/api/admin/cache/{app}/keys?count=1000&cursor={cursor}&match={_quote(glob)}"
                        reply = request(self.server.url, "GET", path, token=staff)
                        self.assertIn(reply.status, (200, 400), reply.body)
                        if reply.status != 200:
                            break
                        listed += [entry["key"] for entry in reply.body["keys"]]
                        cursor = reply.body["cursor"]
                        if cursor == "0":
                            break
                    outside = [key for key in listed if not key.startswith(APPS[app] + "_")]
                    self.assertEqual(outside, [])

    def test_clearing_one_app_leaves_the_others(self):
        self.touch_everything()

        def counts() -> dict[str, int]:
            return {
                app: len(list(self.redis.scan_iter(match=f"{prefix}_*", count=1000))) for app, prefix in APPS.items()
            }

        before = counts()
        self.assertGreater(before["billing"], 0)
        reply = request(self.server.url, "DELETE", "/api/admin/cache/billing", token=self.staff.token)
        self.assertEqual(reply.status, 200)
        after = counts()
        self.assertEqual(after["billing"], 0)
        for app in APPS:
            if app != "billing":
                # Others may only grow (the staff request itself caches its token record).
                self.assertGreaterEqual(after[app], before[app], app)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
