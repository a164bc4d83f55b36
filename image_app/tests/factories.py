"""Small factories for the image app's tests."""

from __future__ import annotations

from auth_app.models import User
from image_app.models import Image


def make_image(*, owner: User, prompt: str = "a heron at dawn", width: int = 96, height: int = 64, **extra) -> Image:
    return Image.objects.create(owner=owner, prompt=prompt, width=width, height=height, **extra)
