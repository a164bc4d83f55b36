"""The fair queue with one worker that really completes its jobs (API.md, "Fair queue, exactly").

FairClaimTests (test_services.py) claims without completing, which a count of unfinished jobs passes;
here each job is rendered, stored and completed before the next claim, by the real generator loop:
in this process (a thread, with a gate that holds its first render), and as a ``run_generator`` process.
"""

from __future__ import annotations

import signal
import threading
import unittest
from datetime import timedelta
from unittest import mock

from django.db import connection, connections
from django.test import tag
from django.utils import timezone

from auth_app.tests.factories import make_user
from image_app import generator
from image_app.generator import Generator
from image_app.models import Image, QueueTurn
from image_app.tests.factories import make_image
from image_app.tests.test_worker_processes import Worker, wait_until
from techbirdsfly.testing import LiveTestCase, private_media_root, server_env


class FairQueueTestCase(LiveTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.media = private_media_root(self)
        self.a, self.b = make_user(), make_user()

    def backlog(self, count: int = 10) -> list[Image]:
        start = timezone.now() - timedelta(minutes=5)
        return [make_image(owner=self.a, prompt=f"a{i}", created_at=start + timedelta(seconds=i)) for i in range(count)]


class InProcessTests(FairQueueTestCase):
    def start_worker(
        self, *, gate: threading.Event | None = None, first: threading.Event | None = None
    ) -> tuple[threading.Thread, list[str]]:
        """One generator thread that runs until the queue is empty, and the prompts in the order rendered.

        With ``gate``, the first render sets ``first`` and waits for ``gate``: that job is claimed and
        running, and whatever the test does meanwhile happens before it completes.
        """
        order: list[str] = []
        real_render = generator.render_png

        def render(**kwargs):
            order.append(kwargs["prompt"])
            if gate is not None and len(order) == 1:
                first.set()
                gate.wait(30)
            return real_render(**kwargs)

        patcher = mock.patch.object(generator, "render_png", render)
        patcher.start()
        self.addCleanup(patcher.stop)

        def drain() -> None:
            try:
                Generator(worker="fair").run(once=True)
            finally:
                connections.close_all()

        worker = threading.Thread(target=drain, name="generator")
        worker.start()
        return worker, order

    def test_an_owner_queued_behind_a_backlog_is_served_second(self):
        self.backlog()
        make_image(owner=self.b, prompt="b0")
        worker, order = self.start_worker()
        worker.join(60)
        self.assertFalse(worker.is_alive())
        self.assertEqual(order[:2], ["a0", "b0"])
        self.assertEqual(order[2:], [f"a{i}" for i in range(1, 10)])  # then the backlog, in order
        self.assertEqual(Image.objects.filter(status="completed").count(), 11)
        # The turn outlives the jobs: B, served once and done, still counts as served after A.
        self.assertLess(QueueTurn.objects.get(owner=self.b).served_at, QueueTurn.objects.get(owner=self.a).served_at)

    def test_an_image_queued_while_the_backlog_renders_is_next(self):
        self.backlog()
        first, gate = threading.Event(), threading.Event()
        worker, order = self.start_worker(gate=gate, first=first)
        try:
            self.assertTrue(first.wait(30), "the worker never began its first job")
            # A's first job is running; A's nine others are queued and older than B's.
            make_image(owner=self.b, prompt="b0")
        finally:
            gate.set()
            worker.join(60)
        self.assertFalse(worker.is_alive())
        self.assertEqual(order[:2], ["a0", "b0"])
        self.assertEqual(len(order), 11)


@tag("live")
@unittest.skipUnless(connection.vendor == "postgresql", "the worker process needs PostgreSQL")
class RunGeneratorProcessTests(FairQueueTestCase):
    def test_one_run_generator_serves_a_later_owner_first_or_second(self):
        worker = Worker(
            server_env(MEDIA_ROOT=str(self.media), GENERATOR_POLL_SECONDS="0.1", GENERATOR_TEST_SLOWDOWN_SECONDS="0.1")
        )
        self.addCleanup(worker.cleanup)
        wait_until(lambda: "started" in worker.output(), timeout=60, what="the worker to start")
        backlog = self.backlog()
        late = make_image(owner=self.b, prompt="b0")
        ids = [image.pk for image in backlog] + [late.pk]
        wait_until(
            lambda: Image.objects.filter(pk__in=ids, status="completed").count() == 11, timeout=120, what="11 jobs"
        )
        worker.signal(signal.SIGTERM)
        self.assertEqual(worker.wait(timeout=15), 0, worker.output()[-3000:])
        order = worker.completed()
        self.assertEqual(sorted(order), sorted(ids))
        self.assertIn(late.pk, order[:2], order)
