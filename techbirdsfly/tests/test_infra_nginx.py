"""The front proxy: the real nginx with infra/nginx/'s config, in front of the real gunicorn.

Attacks come over raw sockets from this process, as a client on the network would send them. Time
bounds are the ones the config sets (nginx's header timeout) or the issue's target (/api/health
under 1 s during a slowloris); everything else is counted, not timed.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import random
import re
import select
import socket
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.test import RequestFactory, SimpleTestCase, override_settings, tag

from techbirdsfly.client import client_address
from techbirdsfly.testing import GunicornServer, GunicornTestCase, free_port, server_env

from .nginx_server import CONN_PER_ADDRESS, STREAM_TEMPLATE, TEMPLATE, NginxServer

SLOW_CONNECTIONS = 24  # the reproduction: 24 connections, one header line every few seconds
SLOW_LINE_EVERY = 2.0
HEADER_TIMEOUT = 5.0  # client_header_timeout in the template


def raw_request(port: int, data: bytes, *, timeout: float = 10.0, source: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    """Send bytes as they are, read the whole answer: (status, lower-cased headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as sock:
        # The server may answer and close before taking everything (a refused body).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def get(port: int, path: str, *, timeout: float = 10.0, source: str = "127.0.0.1", headers: str = "") -> tuple:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
    return raw_request(port, request.encode(), timeout=timeout, source=source)


class Slowloris:
    """``count`` connections that each send a request line, then one header line every ``every`` seconds.

    A connection the server closes is opened again, so ``count`` are held all along, as a real
    attacker would. Records how long the server let each connection live.
    """

    def __init__(self, port: int, *, count: int = SLOW_CONNECTIONS, every: float = SLOW_LINE_EVERY) -> None:
        self.port, self.count, self.every = port, count, every
        self.opened: dict[socket.socket, float] = {}
        self.lifetimes: list[float] = []  # seconds from connect until the server closed it
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self.opened[sock] = time.monotonic()

    def closed(self, sock: socket.socket) -> None:
        self.lifetimes.append(time.monotonic() - self.opened.pop(sock))
        sock.close()

    def run(self) -> None:
        line = 0
        next_line = time.monotonic() + self.every
        while not self.stopping.is_set():
            while len(self.opened) < self.count:
                self.connect()
            readable, _, _ = select.select(list(self.opened), [], [], 0.1)
            for sock in readable:  # the server answered (a timeout page) or closed: either way, gone
                self.closed(sock)
            if time.monotonic() >= next_line:
                line += 1
                for sock in list(self.opened):
                    try:
                        sock.sendall(f"X-Slow-{line}: {'a' * 8}\r\n".encode())
                    except OSError:
                        self.closed(sock)
                next_line += self.every

    def __enter__(self) -> Slowloris:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        for sock in list(self.opened):
            sock.close()


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server closed (or reset) a connection that select() reported readable."""
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def probe_health(port: int, *, timeout: float) -> float | None:
    """Seconds one GET /api/health took to answer 200, or None when it did not answer in ``timeout``."""
    started = time.monotonic()
    try:
        status, _, _ = get(port, "/api/health", timeout=timeout)
    except TimeoutError:
        return None
    return time.monotonic() - started if status == 200 else None


@tag("live", "infra")
class FrontProxyTests(GunicornTestCase):
    """nginx (infra/nginx/templates/default.conf.template) in front of gunicorn (infra/gunicorn.conf.py)."""

    @classmethod
    def setUpClass(cls) -> None:
        super(GunicornTestCase, cls).setUpClass()
        if not (Path(settings.STATIC_ROOT) / "admin" / "css" / "base.css").exists():
            call_command("collectstatic", interactive=False, verbosity=0)  # as `make test` does first
        # As in the compose files: the app trusts exactly the one proxy in front of it.
        cls.server = GunicornServer(env=server_env(DJANGO_TRUSTED_PROXY_COUNT="1"), workers=2).start()
        cls.nginx = NginxServer(
            upstream=f"127.0.0.1:{cls.server.port}",
            static_root=Path(settings.STATIC_ROOT),
            max_body_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        ).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.nginx.stop()
        super().tearDownClass()

    def assert_json_error(self, status: int, headers: dict, body: bytes, expected: int) -> dict:
        self.assertEqual(status, expected, body[:300])
        self.assertEqual(headers.get("content-type"), "application/json", headers)
        answer = json.loads(body)
        self.assertIn("detail", answer)
        return answer

    def test_a_slowloris_leaves_health_through_nginx_under_a_second(self) -> None:
        latencies: list[float | None] = []
        with Slowloris(self.nginx.port) as attack:
            time.sleep(SLOW_LINE_EVERY)  # every slow connection is in and has sent a header line
            until = time.monotonic() + HEADER_TIMEOUT + 2 * SLOW_LINE_EVERY  # past nginx's first cut
            while time.monotonic() < until:
                latencies.append(probe_health(self.nginx.port, timeout=5))
                time.sleep(0.25)
            held = len(attack.opened)
        answered = [seconds for seconds in latencies if seconds is not None]
        print(
            f"\nslowloris ({SLOW_CONNECTIONS} connections, a header line every {SLOW_LINE_EVERY:g} s) through nginx: "
            f"{len(answered)}/{len(latencies)} health probes answered, max {max(answered, default=0) * 1000:.0f} ms; "
            f"nginx cut {len(attack.lifetimes)} slow connections after at most {max(attack.lifetimes, default=0):.1f} s"
        )
        self.assertEqual(held, SLOW_CONNECTIONS)  # the attack was on all along
        self.assertGreaterEqual(len(latencies), 10)
        self.assertEqual(len(answered), len(latencies), latencies)
        self.assertLess(max(answered), 1.0, latencies)
        # nginx, not the attacker, ends each slow request: the whole header within client_header_timeout.
        self.assertGreaterEqual(len(attack.lifetimes), SLOW_CONNECTIONS)
        self.assertLess(max(attack.lifetimes), HEADER_TIMEOUT + SLOW_LINE_EVERY + 1.5)

    def test_600_slow_connections_from_one_address_leave_health_from_another_under_a_second(self) -> None:
        # Each sends half a header and stays: the http server cannot count them (no request yet),
        # the stream front counts each at accept and closes those over TBF_CONN_PER_ADDRESS at once.
        attack = []
        try:
            started = time.monotonic()
            for _ in range(600):
                sock = socket.create_connection(("127.0.0.1", self.nginx.port), timeout=5)
                with contextlib.suppress(OSError):  # one closed already may refuse the bytes
                    sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                attack.append(sock)
            latencies: list[float | None] = []
            # Within nginx's header timeout, while every slow connection it let in is still held.
            until = started + HEADER_TIMEOUT - 1
            while time.monotonic() < until or len(latencies) < 4:
                probe_started = time.monotonic()
                try:
                    status, _, _ = get(self.nginx.port, "/api/health", timeout=3, source="127.0.0.2")
                    latencies.append(time.monotonic() - probe_started if status == 200 else None)
                except OSError:
                    latencies.append(None)
                time.sleep(0.1)
            readable, _, _ = select.select(attack, [], [], 0.5)
            held = len(attack) - sum(1 for sock in readable if closed_by_peer(sock))
        finally:
            for sock in attack:
                sock.close()
        answered = sorted(seconds for seconds in latencies if seconds is not None)
        median = answered[len(answered) // 2] if answered else None
        print(
            f"\n600 slow connections from 127.0.0.1: nginx held {held}; health from 127.0.0.2 answered "
            f"{len(answered)}/{len(latencies)} probes, median {median} s"
        )
        self.assertLessEqual(held, CONN_PER_ADDRESS)
        self.assertEqual(len(answered), len(latencies), latencies)  # none lost
        self.assertLessEqual(median, 1.0, latencies)

    def test_the_same_slowloris_straight_at_gunicorn_blocks_health(self) -> None:
        # The control: what nginx is for. gthread workers give a thread to each slow request. One
        # worker here, so the outcome does not hang on how the kernel spreads the 24 accepts over
        # the workers (one worker taking them all leaves the other free to answer).
        server = GunicornServer(env=server_env(), workers=1).start()
        self.addCleanup(server.stop)
        with Slowloris(server.port):
            time.sleep(SLOW_LINE_EVERY)
            blocked = probe_health(server.port, timeout=2)
        self.assertIsNone(blocked)
        self.assertIsNotNone(probe_health(server.port, timeout=10))  # free again once they are gone

    def test_a_2_mb_body_is_refused_with_json_413(self) -> None:
        body = b"{" + b" " * (2 * 1024 * 1024) + b"}"
        head = (
            "POST /api/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        status, headers, answer = raw_request(self.nginx.port, head.encode() + body)
        detail = self.assert_json_error(status, headers, answer, 413)["detail"]
        self.assertIn(str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE), detail)

    def test_malformed_requests_answer_json_from_nginx_not_html(self) -> None:
        cases = [
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET /api/health HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
            (b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431),
            (b"GET /" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
        ]
        for request, expected in cases:
            with self.subTest(request=request[:40]):
                self.assert_json_error(*raw_request(self.nginx.port, request), expected)

    def test_an_auth_flood_from_one_address_gets_json_429_from_nginx(self) -> None:
        # 40 requests at once on 40 connections: nginx admits one plus a burst of 20 (and what 10/s
        # refills meanwhile), the rest never reach gunicorn.
        request = b"GET /api/auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        sockets = [socket.create_connection(("127.0.0.1", self.nginx.port), timeout=20) for _ in range(40)]
        started = time.monotonic()
        for sock in sockets:
            sock.sendall(request)
        sent_in = time.monotonic() - started
        answers = []
        for sock in sockets:
            with sock:
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            answers.append(data)
        statuses = [int(data.split(b" ", 2)[1]) for data in answers]
        refused = [data for data, status in zip(answers, statuses, strict=True) if status == 429]
        self.assertLessEqual(len(statuses) - len(refused), 21 + int(10 * sent_in) + 1, statuses)
        self.assertTrue(all(status in (401, 429) for status in statuses), statuses)
        head, _, body = refused[0].partition(b"\r\n\r\n")
        self.assertIn(b"Content-Type: application/json", head)
        self.assertIn(b"Retry-After: 1", head)
        self.assertIn("detail", json.loads(body))

    def test_the_app_sees_the_client_address_only_through_the_proxy(self) -> None:
        # Attacker at 127.0.0.2 fails 20 logins, claiming in X-Forwarded-For to be 127.0.0.3.
        def login(source: str, email: str, forged: str | None = None) -> http.client.HTTPResponse:
            connection = http.client.HTTPConnection(
                "127.0.0.1", self.nginx.port, timeout=30, source_address=(source, 0)
            )
            headers = {"Content-Type": "application/json"}
            if forged:
                headers["X-Forwarded-For"] = forged
            connection.request("POST", "/api/auth/login", json.dumps({"email": email, "password": "wrong"}), headers)
            response = connection.getresponse()
            response.read()
            connection.close()
            return response

        for attempt in range(20):
            started = time.monotonic()
            self.assertEqual(login("127.0.0.2", f"nobody{attempt}@example.com", forged="127.0.0.3").status, 401)
            time.sleep(max(0.0, 0.15 - (time.monotonic() - started)))  # under nginx's 10/s for /api/auth/
        # The app counted them against the real address, not the forged one and not nginx's.
        refused = login("127.0.0.2", "someone-else@example.com", forged="127.0.0.9")
        self.assertEqual(refused.status, 429)
        self.assertIsNotNone(refused.getheader("Retry-After"))
        self.assertEqual(login("127.0.0.3", "nobody0b@example.com").status, 401)
        self.assertEqual(login("127.0.0.1", "nobody0c@example.com").status, 401)

    def test_static_files_are_served_by_nginx_and_metrics_are_not_public(self) -> None:
        status, headers, body = get(self.nginx.port, "/static/admin/css/base.css")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/css")
        self.assertEqual(body, (Path(settings.STATIC_ROOT) / "admin" / "css" / "base.css").read_bytes())
        self.assert_json_error(*get(self.nginx.port, "/static/admin/css/missing.css"), 404)
        self.assert_json_error(*get(self.nginx.port, "/metrics"), 404)
        # The API's own answers pass through untouched (a 404 from Django is still Django's).
        status, headers, _ = get(self.nginx.port, "/api/health")
        self.assertEqual((status, headers["content-type"]), (200, "application/json"))


class RecordingUpstream:
    """A stand-in for gunicorn that records the header fields of each request nginx sends it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[dict[str, str]] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            with conn:
                data = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                    data += chunk
                lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
                self.requests.append({k.lower(): v for k, v in (line.split(": ", 1) for line in lines)})
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    def close(self) -> None:
        self.listener.close()


@tag("infra")
class NginxWithoutGunicornTests(SimpleTestCase):
    def start_nginx(self, upstream_port: int) -> NginxServer:
        nginx = NginxServer(
            upstream=f"127.0.0.1:{upstream_port}",
            static_root=Path(settings.STATIC_ROOT),
            max_body_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        )
        self.addCleanup(nginx.stop)
        checked = nginx.check()
        self.assertEqual(checked.returncode, 0, checked.stderr)
        return nginx.start()

    def test_the_config_is_valid_and_a_dead_upstream_answers_json_502(self) -> None:
        nginx = self.start_nginx(free_port())  # nothing listens there
        status, headers, body = get(nginx.port, "/api/health")
        self.assertEqual((status, headers["content-type"]), (502, "application/json"))
        self.assertIn("detail", json.loads(body))

    def test_forwarded_headers_are_replaced_not_passed_along(self) -> None:
        upstream = RecordingUpstream()
        self.addCleanup(upstream.close)
        nginx = self.start_nginx(upstream.port)
        forged = "X-Forwarded-For: 10.9.9.9, 10.8.8.8\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 10.9.9.9\r\n"
        status, _, _ = get(nginx.port, "/api/health", source="127.0.0.2", headers=forged)
        self.assertEqual(status, 200)
        seen = upstream.requests[-1]
        self.assertEqual(seen["x-forwarded-for"], "127.0.0.2")  # the peer nginx saw, nothing the client wrote
        self.assertEqual(seen["x-forwarded-proto"], "http")  # nginx's own scheme: https cannot be claimed
        self.assertNotIn("x-real-ip", seen)
        # What the app makes of it with the compose setting (one trusted proxy), and without it.
        request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=seen["x-forwarded-for"])
        with override_settings(TRUSTED_PROXY_COUNT=1):
            self.assertEqual(client_address(request), "127.0.0.2")
        with override_settings(TRUSTED_PROXY_COUNT=0):
            self.assertEqual(client_address(request), "127.0.0.1")

    def test_ipv6_clients_share_the_auth_rate_limit_per_64(self) -> None:
        upstream = RecordingUpstream()
        self.addCleanup(upstream.close)
        nginx = self.start_nginx(upstream.port)
        # 40 at once from addresses of one /64, in every shape nginx writes them.
        one_64 = [ipaddress.IPv6Address(f"2001:db8:0:0:{i % 2 * i:x}:{i % 3:x}:0:{i:x}") for i in range(40)]
        refused = self.auth_burst(nginx, [address.compressed for address in one_64])
        self.assertGreaterEqual(refused, 40 - 21 - 5, "addresses of one /64 are one client")
        # 40 at once from 40 /64s: 40 clients, each far below its limit.
        refused = self.auth_burst(nginx, [f"2001:db8:0:{i + 1:x}::1" for i in range(40)])
        self.assertEqual(refused, 0)

    def auth_burst(self, nginx: NginxServer, sources: list[str]) -> int:
        """Requests to /api/auth/ at once, one per source address (a PROXY header on the http server's
        socket, as the stream front writes it); how many nginx refused with 429."""
        sockets = []
        for _ in sources:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(20)
            sock.connect(str(nginx.http_socket))
            sockets.append(sock)
        for sock, source in zip(sockets, sources, strict=True):
            sock.sendall(
                f"PROXY TCP6 {source} ::1 40000 80\r\n"
                "GET /api/auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
        statuses = []
        for sock in sockets:
            with sock:
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            statuses.append(int(data.split(b" ", 2)[1]))
        self.assertTrue(set(statuses) <= {200, 429}, statuses)
        return statuses.count(429)


MAP = re.compile(r"^map \$remote_addr \$tbf_client \{$.*?^\}$", re.M | re.S)


class ClientKeyMapTests(SimpleTestCase):
    """The map that keys nginx's per-address limits: an IPv4 address, or an IPv6 client's /64."""

    def rules(self) -> list[tuple[str, str]]:
        maps = [MAP.findall(template.read_text()) for template in (TEMPLATE, STREAM_TEMPLATE)]
        self.assertEqual([len(found) for found in maps], [1, 1])
        self.assertEqual(maps[0], maps[1])  # one map, in the stream and in the http config alike
        return re.findall(r'^\s*"~(.*?)"\s+(\S+);$', maps[0][0], re.M)

    def key(self, rules: list[tuple[str, str]], address: str) -> str:
        """What nginx makes of $remote_addr with the map (regexes in order, the first match wins)."""
        for regex, value in rules:
            if match := re.search(regex, address):
                return address if value == "$remote_addr" else re.sub(r"\$(\d)", lambda g: match[int(g[1])], value)
        return address

    def test_every_address_of_a_64_has_one_key_and_other_64s_another(self):
        rules = self.rules()
        pick = random.Random(64)
        for _ in range(20000):
            # Many zero groups, so that "::" falls everywhere RFC 5952 puts it.
            groups = [pick.choice([0, 0, 1, pick.randrange(65536)]) for _ in range(8)]
            address = ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups))
            if address.ipv4_mapped:
                continue
            with self.subTest(address=address.compressed):
                self.assertEqual(self.key(rules, address.compressed), ":".join(f"{g:x}" for g in groups[:4]))
        self.assertEqual(self.key(rules, "192.0.2.7"), "192.0.2.7")
