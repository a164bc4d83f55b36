from django.db import models


class CacheJournal(models.Model):
    """One cache invalidation, written in the transaction of the write that caused it.

    Its id is the scope's new generation number; every process checks cached entries against the
    newest row of their scope (techbirdsfly/cache/journal.py). Rows older than the longest TTL are pruned.
    """

    app = models.CharField(max_length=16)
    scope = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.app}:{self.scope} #{self.pk}"
