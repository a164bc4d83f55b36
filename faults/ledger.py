"""After a fault: is every acknowledged write in the database, and do reads show it?"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Sum

from billing_app.models import UsageRecord
from image_app.models import Image
from user_app.models import UserPreferences

from .load import Actor, request


def lost_writes(actors: Iterable[Actor]) -> list[str]:
    """Each write a client was told succeeded (2xx) but that the database does not hold."""
    lost: list[str] = []
    for actor in actors:
        usage = dict(UsageRecord.objects.filter(id__in=actor.usage_acked).values_list("id", "units"))
        lost += [f"usage {rid} ({units} units)" for rid, units in actor.usage_acked.items() if usage.get(rid) != units]
        images = dict(Image.objects.filter(id__in=actor.images_acked).values_list("id", "prompt"))
        lost += [f"image {iid}" for iid, prompt in actor.images_acked.items() if images.get(iid) != prompt]
        if actor.language_acked is not None:
            stored = UserPreferences.objects.filter(user_id=actor.user_id).values_list("language", flat=True).first()
            if stored not in (actor.language_acked, *actor.language_unknown):
                lost += [f"preferences of user {actor.user_id}: {stored!r}, acknowledged {actor.language_acked!r}"]
    return lost


def stale_reads(base: str, actors: Iterable[Actor]) -> list[str]:
    """Cached reads that disagree with the database (read twice: the second is normally a hit)."""
    stale: list[str] = []
    for actor in actors:
        units = UsageRecord.objects.filter(account_id=actor.account_id).aggregate(n=Sum("units"))["n"] or 0
        language = UserPreferences.objects.filter(user_id=actor.user_id).values_list("language", flat=True).first()
        for _ in range(2):
            summary = request(base, "GET", f"/api/billing/summary/{actor.account_id}", token=actor.token)
            if summary.status != 200 or summary.body["data"]["totalUsageUnits"] != units:
                stale.append(f"summary {actor.account_id}: {summary.status} {summary.body} (database: {units} units)")
            prefs = request(base, "GET", f"/api/users/{actor.user_id}/preferences", token=actor.token)
            if prefs.status != 200 or (language and prefs.body["data"]["language"] != language):
                stale.append(f"preferences {actor.user_id}: {prefs.status} {prefs.body} (database: {language!r})")
        for image_id in list(actor.images_acked)[-3:]:
            image = request(base, "GET", f"/api/images/{image_id}", token=actor.token)
            if image.status != 200:
                stale.append(f"image {image_id}: {image.status} {image.body}")
    return stale
