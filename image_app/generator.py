"""The image generator: a queue consumer that renders queued images (``manage.py run_generator``).

Jobs are rows of ``Image``. A worker leases one at a time (``services.image_claim_next``, a
``SELECT ... FOR UPDATE SKIP LOCKED``, owners in turn), renders it, stores the PNG through Django's
default storage (files.py) and completes it — or fails it with a reason. A worker that dies
mid-job leaves a lease that runs out, and the job is claimed again; a worker that outlived its
lease finds, when it tries to finish, that the job is no longer its own and throws its result
away, so every job is completed (and its account billed) exactly once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
import time

from django.db import DatabaseError, close_old_connections, connection
from django.urls import reverse

from . import conf, files, services
from .models import Image
from .render import render_png

logger = logging.getLogger("image_app.generator")


class Generator:
    def __init__(self, *, stop: threading.Event | None = None, worker: str | None = None) -> None:
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        # Set by SIGTERM/SIGINT: finish (or hand back) the current job, then return.
        self.stop = stop or threading.Event()

    def run(self, *, once: bool = False) -> int:
        """Process jobs until stopped (or, with ``once``, until the queue is empty); return how many."""
        if connection.vendor == "sqlite":
            logger.warning("SQLite has no row locks: run only one generator against this database")
        logger.info("generator %s started (lease %ss)", self.worker, conf.lease_seconds())
        done = 0
        while not self.stop.is_set():
            # A long-running process outlives connections (database restarts, CONN_MAX_AGE). Inside
            # an outer transaction (a test case) the connection is not ours to close.
            if not connection.in_atomic_block:
                close_old_connections()
            try:
                job = services.image_claim_next(worker=self.worker)
                if job is None:
                    if once:
                        break
                    self.stop.wait(conf.poll_seconds())
                    continue
                self.process(job)
                done += 1
            except DatabaseError as exc:
                # The job we may hold goes back to the queue when its lease runs out.
                logger.warning("database unavailable (%s); retrying", exc)
                self.stop.wait(conf.poll_seconds())
        logger.info("generator %s stopped after %d job(s)", self.worker, done)
        return done

    def process(self, job: Image) -> None:
        logger.info(
            "image %s: claimed (%dx%d, style %r, attempt %d)", job.pk, job.width, job.height, job.style, job.attempts
        )
        began = time.monotonic()
        slowdown = conf.test_slowdown_seconds()
        if slowdown and self.stop.wait(slowdown):
            try:
                services.image_release(image=job, worker=self.worker)
                logger.info("image %s: handed back to the queue (stopping)", job.pk)
            except services.LeaseLost:
                logger.warning("image %s: lease lost before it could be handed back", job.pk)
            return
        try:
            png = render_png(prompt=job.prompt, style=job.style, width=job.width, height=job.height)
            name = files.result_save(image_id=job.pk, png=png)
        except Exception as exc:  # a job that cannot be rendered or stored fails; the worker goes on
            logger.exception("image %s: failed", job.pk)
            # The reason is shown to the image's owner: the error's kind, not server paths (the log has those).
            self._fail(job, f"Rendering failed ({type(exc).__name__}).")
            return
        try:
            services.image_complete(
                image=job,
                worker=self.worker,
                result_url=reverse("image-result", kwargs={"image_id": job.pk}),
                result_file=name,
                result_bytes=len(png),
                checksum=hashlib.sha256(png).hexdigest(),
            )
        except services.LeaseLost:
            # The file's name is the job's, not this attempt's: while the image exists, the worker
            # that holds it now writes the same bytes there (or fails the job, which deletes them).
            if not Image.objects.filter(pk=job.pk).exists():
                files.result_delete(name)
            logger.warning("image %s: no longer ours (lease lost or image deleted); discarded this result", job.pk)
            return
        logger.info("image %s: completed in %.2fs (%d bytes)", job.pk, time.monotonic() - began, len(png))

    def _fail(self, job: Image, reason: str) -> None:
        try:
            services.image_fail(image=job, worker=self.worker, reason=reason)
        except services.LeaseLost:
            logger.warning("image %s: no longer ours (lease lost or image deleted); not marking it failed", job.pk)
