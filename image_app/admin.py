from django.contrib import admin

from .models import Image


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "owner",
        "account",
        "status",
        "width",
        "height",
        "style",
        "created_at",
        "completed_at",
        "attempts",
    )
    list_filter = ("status",)
    search_fields = ("owner__email", "prompt")
    raw_id_fields = ("owner", "account")
    readonly_fields = ("result_file", "bytes", "checksum", "lease_owner", "lease_expires_at", "attempts")
