from django.contrib import admin

from .models import UserPreferences


@admin.register(UserPreferences)
class UserPreferencesAdmin(admin.ModelAdmin):
    list_display = ("user", "theme", "language", "timezone", "notify_email", "notify_push", "updated_at")
    list_filter = ("theme", "notify_email", "notify_push")
    search_fields = ("user__email",)
    raw_id_fields = ("user",)
