from django.contrib import admin

from .models import CacheJournal


@admin.register(CacheJournal)
class CacheJournalAdmin(admin.ModelAdmin):
    list_display = ("id", "app", "scope", "created_at")
    list_filter = ("app",)
    search_fields = ("scope",)

    # The journal is written by invalidations only: an edit here would break what it promises.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
