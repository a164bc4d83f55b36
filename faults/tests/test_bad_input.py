"""Hostile bodies, paths and headers sent to gunicorn: every answer a JSON 4xx, never a 5xx, never HTML.

What is sent: bodies over DATA_UPLOAD_MAX_MEMORY_SIZE, JSON nested a hundred thousand deep, bytes
that are not UTF-8, lone UTF-16 surrogates and NUL characters (PostgreSQL stores neither), integers
of thousands of digits, NaN and Infinity, ids that overflow a bigint in paths and bodies, and the
wrong content types.
"""

from __future__ import annotations

import json
import socket
import threading

from django.test import SimpleTestCase, tag

from faults.load import Reply, request
from faults.tests.support import make_actor, make_actors
from techbirdsfly.testing import GunicornTestCase

MB = 1024 * 1024


@tag("live")
class BadInputTests(GunicornTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner = make_actors(1, tag="badinput")[0]
        self.staff = make_actor(staff=True, tag="badinputstaff")
        self.writes = [
            ("POST", "/api/auth/register", None),
            ("POST", "/api/auth/login", None),
            ("POST", "/api/auth/refresh", None),
            ("POST", "/api/auth/validate-token", None),
            ("POST", "/api/billing/accounts", self.owner.token),
            ("POST", "/api/billing/usage", self.owner.token),
            ("POST", "/api/images", self.owner.token),
            ("PATCH", f"/api/images/{self.owner.image_id}", self.staff.token),
            ("PUT", f"/api/users/{self.owner.user_id}/preferences", self.owner.token),
            ("PATCH", f"/api/users/{self.owner.user_id}/preferences", self.owner.token),
        ]

    def send(self, method: str, path: str, token: str | None, raw: bytes | None = None, **kwargs) -> Reply:
        return request(self.server.url, method, path, token=token, raw=raw, **kwargs)

    def assert_client_error(self, reply: Reply, *, allowed: tuple[int, ...] = (400,)) -> None:
        where = f"{reply.method} {reply.path} -> {reply.status} {str(reply.body)[:300]}"
        self.assertIsNotNone(reply.status, f"{where}: no answer ({reply.error})")
        self.assertIn(reply.status, allowed, where)
        self.assertTrue(reply.is_json, f"{where}: {reply.content_type!r} is not JSON")
        self.assertIsInstance(reply.body, dict, where)

    def each_write(self, raw: bytes, *, allowed: tuple[int, ...] = (400,), **kwargs) -> None:
        for method, path, token in self.writes:
            with self.subTest(method=method, path=path):
                self.assert_client_error(self.send(method, path, token, raw, **kwargs), allowed=allowed)

    # --- bodies ----------------------------------------------------------------------------------

    def test_a_body_over_the_upload_limit(self):
        big = b'{"prompt": "' + b"x" * (2 * MB) + b'", "width": 256, "height": 256}'
        self.each_write(big, allowed=(400, 413))
        # Valid but for its size (an extra field is ignored): the limit itself must refuse it.
        padded = b'{"prompt": "p", "width": 256, "height": 256, "padding": "' + b"x" * (2 * MB) + b'"}'
        reply = self.send("POST", "/api/images", self.owner.token, padded)
        self.assert_client_error(reply, allowed=(400, 413))

    def test_json_nested_a_hundred_thousand_deep(self):
        self.each_write(b"[" * 100_000 + b"]" * 100_000)
        self.each_write(b'{"a":' * 50_000 + b"1" + b"}" * 50_000)

    def test_bytes_that_are_not_utf8(self):
        self.each_write(b'{"email": "\xff\xfe\xfd", "password": "\xc3\x28"}')
        self.each_write(b"\xff\xfe\x00{\x00}\x00")

    def test_truncated_and_empty_json(self):
        self.each_write(b'{"email": "a@b.c", "password": ')
        self.each_write(b"null")
        self.each_write(b"[]")
        self.each_write(b'"a string"')

    def valid_bodies(self) -> list[tuple[str, str, str | None, dict]]:
        prefs = {"theme": "dark", "language": "en", "timezone": "UTC", "notifications": {"email": True, "push": False}}
        login = {"email": "n@x.example", "password": "long enough pass 12"}
        return [
            ("POST", "/api/auth/register", None, {**login, "name": "n"}),
            ("POST", "/api/auth/login", None, login),
            ("POST", "/api/auth/refresh", None, {"refreshToken": "not-a-token"}),
            ("POST", "/api/auth/validate-token", None, {"token": "not-a-token"}),
            ("POST", "/api/billing/accounts", self.owner.token, {"name": "n", "plan": "free", "currency": "USD"}),
            (
                "POST",
                "/api/billing/usage",
                self.owner.token,
                {"accountId": self.owner.account_id, "metric": "api.call", "units": 1},
            ),
            ("POST", "/api/images", self.owner.token, {"prompt": "p", "width": 256, "height": 256, "style": "s"}),
            ("PATCH", f"/api/images/{self.owner.image_id}", self.staff.token, {"status": "failed", "resultUrl": "/r"}),
            ("PUT", f"/api/users/{self.owner.user_id}/preferences", self.owner.token, prefs),
            ("PATCH", f"/api/users/{self.owner.user_id}/preferences", self.owner.token, {"language": "de"}),
        ]

    def test_lone_surrogates_and_nul_characters_in_each_string_field(self):
        # Escaped in the JSON text as a client would send them: "\ud800" is valid JSON but not text.
        for method, path, token, body in self.valid_bodies():
            for field_name in [name for name, value in body.items() if isinstance(value, str)]:
                for bad in ("\\ud800", "x\\udfffy", "a\\u0000b"):
                    raw = json.dumps({**body, field_name: "@@"}).replace("@@", bad).encode()
                    with self.subTest(path=path, field=field_name, text=bad):
                        reply = self.send(method, path, token, raw)
                        self.assert_client_error(reply, allowed=(400, 401, 409))
            with self.subTest(path=path, key="surrogate"):
                raw = json.dumps({**body, "@@": 1}).replace("@@", "\\ud800").encode()
                self.assert_client_error(self.send(method, path, token, raw), allowed=(400,))

    def test_huge_integers_nan_and_infinity(self):
        account = self.owner.account_id
        for number in ("1" + "0" * 5000, "9" * 30, str(2**63), "-" + str(2**63 + 1), "1e999", "NaN", "Infinity"):
            with self.subTest(number=number[:20]):
                usage = f'{{"accountId": {number}, "metric": "api.call", "units": 1}}'.encode()
                self.assert_client_error(self.send("POST", "/api/billing/usage", self.owner.token, usage))
                units = f'{{"accountId": {account}, "metric": "api.call", "units": {number}}}'.encode()
                self.assert_client_error(self.send("POST", "/api/billing/usage", self.owner.token, units))
                image = f'{{"prompt": "p", "width": {number}, "height": 256}}'.encode()
                self.assert_client_error(self.send("POST", "/api/images", self.owner.token, image))
                patch = f'{{"status": "completed", "bytes": {number}}}'.encode()
                path = f"/api/images/{self.owner.image_id}"
                self.assert_client_error(self.send("PATCH", path, self.staff.token, patch), allowed=(400, 409))

    def test_wrong_types_everywhere(self):
        for value in ("true", "[1]", '{"a": 1}', '"12"', "12.5", "null"):
            body = (
                f'{{"email": {value}, "password": {value}, "name": {value}, "prompt": {value}, "width": {value}, '
                f'"height": {value}, "accountId": {value}, "metric": {value}, "units": {value}, '
                f'"refreshToken": {value}, "token": {value}, "theme": {value}, "language": {value}, '
                f'"timezone": {value}, "notifications": {value}, "status": {value}, "plan": {value}}}'
            ).encode()
            with self.subTest(value=value):
                self.each_write(body, allowed=(400, 401))

    def test_wrong_content_types(self):
        body = b'{"prompt": "p", "width": 256, "height": 256}'
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "application/xml",
            "json",
        ):
            with self.subTest(content_type=content_type):
                self.each_write(body, allowed=(400, 415), headers={"Content-Type": content_type})

    def test_html_is_never_the_answer_whatever_is_accepted(self):
        for path in ("/api/auth/me", "/api/images/1", "/api/nowhere", f"/api/billing/summary/{self.owner.account_id}"):
            for token in (None, self.owner.token):
                with self.subTest(path=path, token=bool(token)):
                    reply = self.send("GET", path, token, headers={"Accept": "text/html"})
                    self.assertIsNotNone(reply.status)
                    self.assertTrue(reply.is_json, f"{path}: {reply.status} {reply.content_type}")

    # --- paths and headers -----------------------------------------------------------------------

    def test_path_ids_that_overflow_a_bigint(self):
        fullwidth_12 = "%EF%BC%91%EF%BC%92"
        for bad in (str(2**63), "9" * 19, "9" * 20, "1" + "0" * 400, "-1", "0x10", "1e3", "%ff", "%00", fullwidth_12):
            for path in (
                f"/api/images/{bad}",
                f"/api/users/{bad}/preferences",
                f"/api/billing/summary/{bad}",
                f"/api/billing/usage/{bad}",
                f"/api/billing/invoices/{bad}",
                f"/api/billing/invoices/{self.owner.account_id}/{bad}/pay",
                f"/api/admin/cache/{bad}/keys",
            ):
                with self.subTest(path=path[:60]):
                    method = "POST" if path.endswith("/pay") else "GET"
                    reply = self.send(method, path, self.staff.token)
                    self.assert_client_error(reply, allowed=(404,))

    def test_the_largest_bigint_is_an_id_that_does_not_exist(self):
        biggest = 2**63 - 1
        for path in (f"/api/images/{biggest}", f"/api/billing/summary/{biggest}", f"/api/users/{biggest}/preferences"):
            with self.subTest(path=path):
                self.assert_client_error(self.send("GET", path, self.staff.token), allowed=(404,))
        usage = f'{{"accountId": {biggest}, "metric": "api.call", "units": 1}}'.encode()
        self.assert_client_error(self.send("POST", "/api/billing/usage", self.owner.token, usage), allowed=(404,))

    def test_malformed_authorization_headers(self):
        for value in ("Bearer", "Bearer a b", "Bearer \u00e9t\u00e9", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 4000):
            with self.subTest(value=value[:20]):
                raw = {"Authorization": value.encode("latin-1").decode("latin-1")}
                reply = self.send("GET", "/api/auth/me", None, headers=raw)
                self.assert_client_error(reply, allowed=(401,))

    def test_key_listing_query_values(self):
        path = "/api/admin/cache/billing/keys"
        for query in ("count=0", "count=1001", "count=x", "cursor=-1", f"cursor={2**64}", "match=" + "a" * 300):
            with self.subTest(query=query[:30]):
                self.assert_client_error(self.send("GET", f"{path}?{query}", self.staff.token))
        for query in ("match=%00", "match=%ff", "match=%5B", "match=%5C", "match=**", "match=%E2%80%AE"):
            with self.subTest(query=query):
                reply = self.send("GET", f"{path}?{query}", self.staff.token)
                self.assert_client_error(reply, allowed=(200, 400))


class EarlyAnswerTests(SimpleTestCase):
    """The fault clients read a server's answer that arrived before they had sent the whole body.

    gunicorn refuses a body over the limit before reading it, answers, and closes the connection with
    the body unread; the kernel then resets it, and the client's send fails while the answer waits on
    its socket (seen once in CI under load as "no answer (BrokenPipeError)").
    """

    def test_an_answer_sent_before_the_body_was_read_is_read(self):
        listener = socket.create_server(("127.0.0.1", 0))
        answer = b'{"detail": "too big"}'

        def serve() -> None:
            for _ in range(3):
                sock, _ = listener.accept()
                with sock:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        head += sock.recv(65536)
                    sock.sendall(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
                        + answer
                    )  # and close, 16 MB unread

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        with listener:
            port = listener.getsockname()[1]
            for _ in range(3):
                reply = request(f"http://127.0.0.1:{port}", "POST", "/api/images", raw=b"x" * (16 * MB))
                self.assertEqual((reply.status, reply.body, reply.error), (400, {"detail": "too big"}, ""))
        server.join(5)
