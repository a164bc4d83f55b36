from django.db import models
from django.db.models.functions import Now

from techbirdsfly.cache.journal import HISTORY_APP


class CacheJournal(models.Model):
    """One cache invalidation, written in the transaction of the write that caused it.

    Its id is the scope's new generation number; every process checks cached entries against the
    newest row of their scope (techbirdsfly/cache/journal.py). Rows older than the longest TTL are
    pruned. On PostgreSQL the table also has an ``xid`` column, the id of the writing transaction
    (migration 0003), which the model leaves out so that every insert gets it from its default.
    """

    app = models.CharField(max_length=16)
    scope = models.CharField(max_length=200)
    # The database's clock, the one clock every process compares ages with.
    created_at = models.DateTimeField(db_default=Now(), db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=models.Q(app=HISTORY_APP), name="cachejournal_history_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.app}:{self.scope} #{self.pk}"
