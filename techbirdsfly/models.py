from django.db import models


class PendingInvalidation(models.Model):
    """A cache invalidation that could not reach Redis; replayed by the cache layer (cache/layer.py)."""

    app = models.CharField(max_length=16)
    scope = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.app}:{self.scope}"
