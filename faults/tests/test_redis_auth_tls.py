"""Redis AUTH (an ACL user, requirepass) and TLS URLs are honoured, and a bad credential degrades.

Each test runs gunicorn against a redis-server of its own: one that requires a password and has
an ACL user, and one that speaks TLS only on its TLS port (certificates made with the openssl
command line in a temporary directory). With the right credentials or CA the cache is used; with a
wrong password or an untrusted CA the service answers from the database, fast, and never logs
the password.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import redis
from django.test import TransactionTestCase, tag

from faults.load import Reply, request
from faults.tests.support import make_actors
from techbirdsfly.testing import GunicornServer, RedisServer, cache_wait, free_port, server_env

DEFAULT_PASSWORD = "default-user-pass-5e1"
APP_USER, APP_PASSWORD = "tbfapp", "app-user-pass-8c2"
WRONG_PASSWORD = "wrong-pass-that-must-not-be-logged-3f9"
BOUND = 1.0  # seconds a request against a refusing Redis may wait on it (Server-Timing) before the database answers


@tag("live")
class _ServerTestCase(TransactionTestCase):
    serialized_rollback = True  # keeps the migrated price list for the tests that follow

    def serve(self, **env: str) -> GunicornServer:
        server = GunicornServer(env=server_env(**env), workers=1, threads=4).start()
        self.addCleanup(server.stop)
        return server

    def me_twice(self, server: GunicornServer) -> list[Reply]:
        actor = self.actor
        return [request(server.url, "GET", "/api/auth/me", token=actor.token) for _ in range(3)]

    def assert_cached(self, server: GunicornServer) -> None:
        replies = self.me_twice(server)
        self.assertEqual([r.status for r in replies], [200, 200, 200])
        self.assertIs(replies[-1].body["fromCache"], True, "the cache was not used")
        self.assertEqual(request(server.url, "GET", "/api/health").body["cache"], "up")

    def assert_degraded(self, server: GunicornServer, *secrets: str) -> None:
        replies = self.me_twice(server)
        self.assertEqual([r.status for r in replies], [200, 200, 200])
        self.assertEqual([r.body["fromCache"] for r in replies], [False, False, False])
        self.assertLess(max(cache_wait(r) for r in replies), BOUND)
        health = request(server.url, "GET", "/api/health")
        self.assertEqual((health.status, health.body["status"], health.body["cache"]), (200, "degraded", "down"))
        time.sleep(0.2)  # let the log reach the file
        log = server.log.read_text()
        self.assertIn("unavailable", log)
        for secret in secrets:
            self.assertNotIn(secret, log, "a Redis password in the server's log")


class RedisAuthTests(_ServerTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        acl = ["--user", APP_USER, "on", f">{APP_PASSWORD}", "~*", "&*", "+@all", "-flushall", "-flushdb"]
        cls.redis_server = RedisServer(args=["--requirepass", DEFAULT_PASSWORD, *acl]).start()
        cls.port = cls.redis_server.port

    @classmethod
    def tearDownClass(cls) -> None:
        cls.redis_server.cleanup()
        super().tearDownClass()

    def setUp(self) -> None:
        self.admin = self.redis_server.client(password=DEFAULT_PASSWORD)
        self.admin.flushall()
        self.actor = make_actors(1, tag="redisauth")[0]

    def test_the_server_refuses_clients_without_credentials(self):
        with self.assertRaises(redis.exceptions.AuthenticationError):
            self.redis_server.client().ping()

    def test_an_acl_user_and_password_in_the_url(self):
        server = self.serve(REDIS_URL=f"redis://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{self.port}/0")
        self.assert_cached(server)
        keys = [key.decode() for key in self.admin.scan_iter(count=1000)]
        self.assertTrue(any(key.startswith("AuthService_auth:profile:") for key in keys), keys)
        users = {entry["user"] for entry in self.admin.client_list()}
        self.assertIn(APP_USER, users, "the app did not connect as its ACL user")
        self.assertNotIn(APP_PASSWORD, server.log.read_text())

    def test_credentials_from_the_environment(self):
        server = self.serve(
            REDIS_URL=f"redis://127.0.0.1:{self.port}/0", REDIS_USERNAME=APP_USER, REDIS_PASSWORD=APP_PASSWORD
        )
        self.assert_cached(server)

    def test_the_default_user_with_requirepass(self):
        server = self.serve(REDIS_URL=f"redis://:{DEFAULT_PASSWORD}@127.0.0.1:{self.port}/0")
        self.assert_cached(server)

    def test_a_wrong_password_degrades_instead_of_failing(self):
        server = self.serve(REDIS_URL=f"redis://{APP_USER}:{WRONG_PASSWORD}@127.0.0.1:{self.port}/0")
        self.assert_degraded(server, WRONG_PASSWORD)

    def test_no_password_against_a_server_that_wants_one_degrades(self):
        server = self.serve(REDIS_URL=f"redis://127.0.0.1:{self.port}/0")
        self.assert_degraded(server)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path, name: str = "ca") -> Path:
    """A CA, and a server certificate it signed for 127.0.0.1: returns the CA's PEM."""
    subj = ["-subj", f"/CN=tbf-faults-{name}"]
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
             "-days", "2", *subj, cwd=directory)  # fmt: skip
    return directory / f"{name}.pem"


def sign_server_certificate(directory: Path, ca: str = "ca") -> None:
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "san.cnf", cwd=directory)  # fmt: skip


def redis_has_tls() -> bool:
    binary = shutil.which("redis-server")
    if not binary:
        return False
    # A build without TLS refuses the option while reading its configuration; one with it reads the
    # configuration, finds no port to listen on, and exits.
    probe = subprocess.run([binary, "--port", "0", "--tls-port", "0"], capture_output=True, text=True, timeout=30)
    return "Bad directive" not in probe.stdout + probe.stderr


class RedisTlsUrlTests(unittest.TestCase):
    """Whatever redis-server can do: a rediss:// URL makes redis-py use TLS with the CA it names."""

    def test_rediss_url_gives_an_ssl_connection_with_the_ca(self):
        pool = redis.ConnectionPool.from_url("rediss://u:p@127.0.0.1:6380/0?ssl_ca_certs=/etc/tbf/ca.pem")
        self.assertTrue(issubclass(pool.connection_class, redis.connection.SSLConnection))
        self.assertEqual(pool.connection_kwargs["ssl_ca_certs"], "/etc/tbf/ca.pem")
        self.assertEqual((pool.connection_kwargs["username"], pool.connection_kwargs["password"]), ("u", "p"))


@unittest.skipUnless(shutil.which("openssl") and redis_has_tls(), "needs openssl and a redis-server built with TLS")
class RedisTlsTests(_ServerTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.dir = Path(tempfile.mkdtemp(prefix="tbf-tls-"))
        cls.ca = make_certificates(cls.dir)
        sign_server_certificate(cls.dir)
        cls.untrusted_ca = make_certificates(cls.dir, "untrusted")
        cls.tls_port = free_port()
        tls = ["--tls-port", str(cls.tls_port), "--tls-auth-clients", "no"]
        tls += ["--tls-cert-file", str(cls.dir / "server.pem"), "--tls-key-file", str(cls.dir / "server.key")]
        tls += ["--tls-ca-cert-file", str(cls.ca)]
        # The plain port stays on loopback for the test's own inspection; the app uses the TLS port.
        cls.redis_server = RedisServer(args=tls).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.redis_server.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)
        super().tearDownClass()

    def setUp(self) -> None:
        self.redis_server.client().flushall()  # this class's own redis-server
        self.actor = make_actors(1, tag="redistls")[0]

    def tls_connections(self) -> int:
        return sum(
            1 for entry in self.redis_server.client().client_list() if entry["laddr"].endswith(f":{self.tls_port}")
        )

    def test_a_rediss_url_with_the_ca_uses_tls(self):
        server = self.serve(REDIS_URL=f"rediss://127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self.ca}")
        self.assert_cached(server)
        self.assertGreater(self.tls_connections(), 0, "no connection on the TLS port")

    def test_an_untrusted_certificate_degrades(self):
        server = self.serve(REDIS_URL=f"rediss://127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self.untrusted_ca}")
        self.assert_degraded(server)
        self.assertEqual(self.tls_connections(), 0)

    def test_plain_redis_to_the_tls_port_degrades(self):
        server = self.serve(REDIS_URL=f"redis://127.0.0.1:{self.tls_port}/0")
        self.assert_degraded(server)
