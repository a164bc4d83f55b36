from django.contrib import admin

from .models import PendingInvalidation


@admin.register(PendingInvalidation)
class PendingInvalidationAdmin(admin.ModelAdmin):
    list_display = ("app", "scope", "created_at")
    list_filter = ("app",)
