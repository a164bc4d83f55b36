"""Real ``manage.py run_generator`` processes against PostgreSQL and the private redis-server.

TEST-ONLY knob: ``GENERATOR_TEST_SLOWDOWN_SECONDS`` makes each render wait that long first, so a
test can kill or stop a worker while it holds a job. Production never sets it.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test import tag
from PIL import Image as PILImage

from auth_app.tests.factories import make_token, make_user
from billing_app.models import UsageRecord
from billing_app.tests.factories import make_account
from image_app.models import Image
from image_app.tests.factories import make_image
from techbirdsfly.testing import GunicornServer, LiveTestCase, server_env

RANK = {"queued": 0, "running": 1, "completed": 2, "failed": 2}


def wait_until(condition: Callable[[], object], *, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Worker:
    """One ``manage.py run_generator`` process with its output in a file."""

    def __init__(self, env: dict[str, str], *, once: bool = False) -> None:
        self.log = Path(tempfile.mkstemp(prefix="tbf-generator-", suffix=".log")[1])
        command = [sys.executable, "manage.py", "run_generator", *(["--once"] if once else [])]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text()

    def completed(self) -> list[int]:
        return [int(n) for n in re.findall(r"image (\d+): completed", self.output())]

    def signal(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker still running after {timeout}s:\n{self.output()[-3000:]}") from None

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.unlink(missing_ok=True)


@tag("live")
@unittest.skipUnless(connection.vendor == "postgresql", "several workers need PostgreSQL's row locks")
class WorkerProcessTests(LiveTestCase):
    def setUp(self) -> None:
        super().setUp()  # LiveTestCase: the private Redis running and empty, breakers closed
        self.media = Path(tempfile.mkdtemp(prefix="tbf-media-"))
        self.addCleanup(shutil.rmtree, self.media, ignore_errors=True)
        self.owner = make_user()

    def worker(self, *, once: bool = False, lease: int = 60, slowdown: float = 0.0) -> Worker:
        env = server_env(
            MEDIA_ROOT=str(self.media),
            GENERATOR_LEASE_SECONDS=str(lease),
            GENERATOR_POLL_SECONDS="0.1",
            GENERATOR_TEST_SLOWDOWN_SECONDS=str(slowdown),
        )
        worker = Worker(env, once=once)
        self.addCleanup(worker.cleanup)
        return worker

    def assert_result_matches(self, image: Image) -> bytes:
        stored = (self.media / image.result_file).read_bytes()
        self.assertEqual(len(stored), image.bytes)
        self.assertEqual(hashlib.sha256(stored).hexdigest(), image.checksum)
        self.assertEqual(PILImage.open(io.BytesIO(stored)).size, (image.width, image.height))
        return stored

    def test_two_workers_complete_fifty_jobs_each_exactly_once(self):
        workers = [self.worker(slowdown=0.05) for _ in range(2)]
        for worker in workers:  # both are polling before the jobs appear, so both get some
            wait_until(lambda w=worker: "started" in w.output(), timeout=60, what="the workers to start")
        jobs = [Image(owner=self.owner, prompt=f"job {i}", width=64 + i, height=64) for i in range(50)]
        ids = {image.pk for image in Image.objects.bulk_create(jobs)}
        wait_until(
            lambda: Image.objects.filter(pk__in=ids, status="completed").count() == 50, timeout=180, what="50 jobs"
        )
        for worker in workers:
            worker.signal(signal.SIGTERM)
            self.assertEqual(worker.wait(timeout=15), 0, worker.output()[-3000:])

        completions = collections.Counter(n for worker in workers for n in worker.completed())
        self.assertEqual(set(completions), ids)
        self.assertEqual(set(completions.values()), {1}, "some job was completed twice")
        self.assertTrue(all(worker.completed() for worker in workers), "both workers should have taken jobs")
        images = list(Image.objects.filter(pk__in=ids))
        self.assertEqual({(i.status, i.attempts) for i in images}, {("completed", 1)})
        for image in images:
            self.assert_result_matches(image)
        self.assertEqual(len(list((self.media / "images").iterdir())), 50)  # no second copy of anything

    def test_a_job_of_a_killed_worker_is_finished_by_another_after_the_lease(self):
        account = make_account(self.owner)
        image = make_image(owner=self.owner, account=account, width=320, height=200)
        doomed = self.worker(lease=2, slowdown=60)
        wait_until(
            lambda: Image.objects.filter(pk=image.pk, status="running").exists(), timeout=30, what="the first claim"
        )
        image.refresh_from_db()
        first_lease_end = image.lease_expires_at
        doomed.signal(signal.SIGKILL)
        doomed.wait(timeout=10)

        rescuer = self.worker(lease=2)
        wait_until(
            lambda: Image.objects.filter(pk=image.pk, status="completed").exists(), timeout=60, what="the rescue"
        )
        image.refresh_from_db()
        self.assertEqual(image.attempts, 2)
        self.assertGreaterEqual(image.completed_at, first_lease_end)  # not taken over before the lease ran out
        # The worker logs a completion after its commit: the database may say so a moment before the log.
        wait_until(lambda: rescuer.completed() == [image.pk], timeout=10, what="the rescuer's log of it")
        self.assertEqual(rescuer.completed(), [image.pk])
        self.assertEqual(doomed.completed(), [])
        self.assert_result_matches(image)
        [usage] = UsageRecord.objects.filter(account=account)  # billed once, by the rescuer
        self.assertEqual((usage.metric_id, usage.units, usage.amount), ("image.generate", 1, Decimal("0.0400")))
        rescuer.signal(signal.SIGTERM)
        self.assertEqual(rescuer.wait(timeout=15), 0)

    def test_sigterm_hands_back_the_current_job_and_exits_cleanly(self):
        image = make_image(owner=self.owner)
        worker = self.worker(slowdown=60)
        wait_until(lambda: Image.objects.filter(pk=image.pk, status="running").exists(), timeout=30, what="the claim")
        worker.signal(signal.SIGTERM)
        self.assertEqual(worker.wait(timeout=15), 0)
        self.assertIn(f"image {image.pk}: handed back", worker.output())
        image.refresh_from_db()
        state = (image.status, image.lease_owner, image.lease_expires_at, image.attempts)
        self.assertEqual(state, ("queued", "", None, 0))

        idle = self.worker()
        wait_until(lambda: "started" in idle.output(), timeout=30, what="the second worker")
        wait_until(lambda: Image.objects.filter(pk=image.pk, status="completed").exists(), timeout=30, what="a render")
        idle.signal(signal.SIGTERM)
        self.assertEqual(idle.wait(timeout=15), 0)
        self.assertIn("stopped after 1 job(s)", idle.output())

    def test_a_polling_client_sees_queued_then_completed_and_never_a_stale_status(self):
        server = GunicornServer(env=server_env(MEDIA_ROOT=str(self.media)), workers=2).start()
        self.addCleanup(server.stop)
        token = make_token(self.owner)

        def call(method: str, path: str, body: dict | None = None) -> tuple[int, bytes, str]:
            request = urllib.request.Request(  # noqa: S310 (loopback)
                server.url + path,
                method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
                return response.status, response.read(), response.headers["Content-Type"]

        status, body, _ = call("POST", "/api/images", {"prompt": "a swift over the sea", "width": 256, "height": 128})
        self.assertEqual(status, 201)
        image_id = json.loads(body)["id"]

        seen: list[tuple[str, bool]] = []

        def poll() -> str:
            truth = Image.objects.values_list("status", flat=True).get(pk=image_id)
            answer = json.loads(call("GET", f"/api/images/{image_id}")[1])
            seen.append((answer["data"]["status"], answer["fromCache"]))
            # The database moved on before this request began: the answer must not be older.
            self.assertGreaterEqual(RANK[answer["data"]["status"]], RANK[truth], seen)
            return answer["data"]["status"]

        for _ in range(5):
            self.assertEqual(poll(), "queued")
        worker = self.worker(slowdown=1.5)
        wait_until(lambda: poll() == "completed", timeout=60, what="completion seen by the client")
        for _ in range(5):
            self.assertEqual(poll(), "completed")

        statuses = [s for s, _ in seen]
        changes = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
        self.assertEqual(changes, ["queued", "running", "completed"])
        self.assertIn(("queued", True), seen)  # the cache really was in the way
        self.assertIn(("running", True), seen)
        self.assertEqual(seen[statuses.index("completed")], ("completed", False))

        data = json.loads(call("GET", f"/api/images/{image_id}")[1])["data"]
        status, png, content_type = call("GET", data["resultUrl"])
        self.assertEqual((status, content_type), (200, "image/png"))
        self.assertEqual((len(png), hashlib.sha256(png).hexdigest()), (data["bytes"], data["checksum"]))
        self.assertEqual(PILImage.open(io.BytesIO(png)).size, (256, 128))
        worker.signal(signal.SIGTERM)
        self.assertEqual(worker.wait(timeout=15), 0)
