"""A deterministic picture for a prompt and style: the generator's stand-in for a model.

The same prompt, style and size always give the same PNG bytes (for one Pillow version): every
choice is drawn from a random generator seeded with the SHA-256 of style and prompt.
"""

from __future__ import annotations

import hashlib
import io
import random

from PIL import Image, ImageDraw, ImageOps

# Named looks; any other style picks one of them from its hash, so every style renders.
FAMILIES = ("orbs", "blocks", "stripes", "rays")

Color = tuple[int, int, int]


def _palette(rng: random.Random, size: int) -> list[Color]:
    return [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size)]


def _background(rng: random.Random, width: int, height: int, start: Color, end: Color) -> Image.Image:
    ramp = Image.linear_gradient("L")
    ramp = (
        ramp.transpose(rng.choice([Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270]))
        if rng.random() < 0.75
        else ramp
    )
    return ImageOps.colorize(ramp.resize((width, height)), start, end).convert("RGBA")


def _shapes(rng: random.Random, family: str, width: int, height: int, colors: list[Color]) -> Image.Image:
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    scale = min(width, height)
    for _ in range(rng.randint(6, 14)):
        color = (*rng.choice(colors), rng.randint(90, 200))
        x, y = rng.random() * width, rng.random() * height
        size = (0.08 + rng.random() * 0.35) * scale
        if family == "orbs":
            draw.ellipse((x - size, y - size, x + size, y + size), fill=color)
        elif family == "blocks":
            draw.rectangle((x, y, x + size * (0.5 + rng.random()), y + size * (0.5 + rng.random())), fill=color)
        elif family == "stripes":
            band = size * 0.4
            draw.polygon(
                [(x - band, 0), (x + band, 0), (x + band - width * 0.3, height), (x - band - width * 0.3, height)],
                fill=color,
            )
        else:  # rays
            cx, cy = width / 2, height / 2
            start = rng.random() * 360
            radius = max(width, height)
            draw.pieslice(
                (cx - radius, cy - radius, cx + radius, cy + radius), start, start + 6 + rng.random() * 20, fill=color
            )
    return layer


def render_png(*, prompt: str, style: str, width: int, height: int) -> bytes:
    """A width x height PNG derived from ``prompt`` and ``style`` alone."""
    seed = hashlib.sha256(f"{style}\x00{prompt}".encode()).digest()
    rng = random.Random(seed)
    family = style.lower() if style.lower() in FAMILIES else FAMILIES[seed[0] % len(FAMILIES)]
    colors = _palette(rng, 6)
    picture = _background(rng, width, height, colors[0], colors[1])
    picture = Image.alpha_composite(picture, _shapes(rng, family, width, height, colors[2:]))
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="PNG", compress_level=6)
    return out.getvalue()
