from django import forms
from django.contrib import admin

from . import services
from .models import Image, QueueTurn


class ImageAdminForm(forms.ModelForm):
    class Meta:
        model = Image
        fields = "__all__"  # noqa: DJ007 (the admin's own field list decides what is shown)

    def clean_status(self) -> str:
        wanted = self.cleaned_data["status"]
        current = self.initial.get("status")
        if self.instance.pk and current != wanted and wanted not in services.TRANSITIONS[current]:
            raise forms.ValidationError(f"Cannot change status from {current} to {wanted}.")
        return wanted


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    form = ImageAdminForm
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

    def save_model(self, request, obj: Image, form: forms.ModelForm, change: bool) -> None:
        # A status changed here goes through the same service as the API and the generator, so an
        # image completed by staff is billed (once) and a failed one loses its file, as any other.
        wanted = obj.status
        moved = change and "status" in form.changed_data
        if moved:
            obj.status = form.initial["status"]
        super().save_model(request, obj, form, change)
        if moved:
            services.image_update(image=obj, status=wanted)


@admin.register(QueueTurn)
class QueueTurnAdmin(admin.ModelAdmin):
    """Read-only: the generator keeps these; staff may look at whose turn is next."""

    list_display = ("owner", "served_at")
    ordering = ("served_at",)
    raw_id_fields = ("owner",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
