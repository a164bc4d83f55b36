from __future__ import annotations

import io

from django.test import SimpleTestCase
from PIL import Image

from image_app.render import FAMILIES, render_png


class RenderTests(SimpleTestCase):
    def test_a_png_of_the_requested_size(self):
        for width, height in ((64, 64), (2048, 64), (64, 2048), (300, 200)):
            picture = Image.open(io.BytesIO(render_png(prompt="p", style="", width=width, height=height)))
            self.assertEqual((picture.format, picture.size, picture.mode), ("PNG", (width, height), "RGB"))

    def test_the_same_input_gives_the_same_bytes_and_other_inputs_differ(self):
        one = render_png(prompt="a heron", style="orbs", width=128, height=96)
        self.assertEqual(one, render_png(prompt="a heron", style="orbs", width=128, height=96))
        others = {
            render_png(prompt="a heron", style=style, width=128, height=96) for style in (*FAMILIES, "watercolor")
        }
        others.add(render_png(prompt="an owl", style="orbs", width=128, height=96))
        self.assertEqual(len(others | {one}), len(FAMILIES) + 2)

    def test_the_picture_is_not_blank(self):
        picture = Image.open(io.BytesIO(render_png(prompt="colour", style="blocks", width=256, height=256)))
        self.assertGreater(len(picture.getcolors(maxcolors=1 << 16) or range(1 << 16)), 16)
