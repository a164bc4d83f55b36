"""Demo data for the image app (wired into the project's seed_demo command)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.utils import timezone

from .models import Image
from .render import FAMILIES

_SUBJECTS = ("a heron", "a kingfisher", "a flock of starlings", "an owl", "a hummingbird", "a pelican", "a swift")
_PLACES = ("over a harbour", "in a pine forest", "above the city at dusk", "on a frozen lake", "in a desert canyon")
_MOODS = ("at dawn", "in the rain", "under neon light", "in autumn colours", "as a paper cut-out")
_SIZES = (128, 192, 256)
_FAILURE = "Demo: the generator ran out of time."


def seed_images(*, users: Sequence, rng: random.Random, count: int, now: datetime | None = None) -> int:
    """Create ``count`` images of random ``users``: most queued (run_generator renders them), some failed."""
    if not users or count <= 0:
        return 0
    now = now or timezone.now()
    images = []
    for _ in range(count):
        created = now - timedelta(seconds=rng.randint(60, 30 * 24 * 3600))
        failed = rng.random() < 0.1
        images.append(
            Image(
                owner_id=rng.choice(users).pk,
                prompt=f"{rng.choice(_SUBJECTS)} {rng.choice(_PLACES)} {rng.choice(_MOODS)}",
                width=rng.choice(_SIZES),
                height=rng.choice(_SIZES),
                style=rng.choice((*FAMILIES, "")),
                status=Image.Status.FAILED if failed else Image.Status.QUEUED,
                failure_reason=_FAILURE if failed else "",
                created_at=created,
                completed_at=created + timedelta(seconds=rng.randint(1, 30)) if failed else None,
            )
        )
    # New ids: nothing cached can be stale (unknown ids are never cached), so no invalidation.
    Image.objects.bulk_create(images, batch_size=1000)
    return len(images)
