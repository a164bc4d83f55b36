"""image_app's stage of ``manage.py seed_demo`` (registered in ready(): techbirdsfly/seeding.py)."""

from techbirdsfly.seeding import SeedContext, Stage, StageOption

from .demo import seed_images


def _run(ctx: SeedContext) -> str:
    count = seed_images(users=ctx.users, rng=ctx.rng("images"), count=ctx.option("images"), now=ctx.now)
    return f"{count:,} images"


STAGES = [Stage("images", _run, options=(StageOption("--images", 500, "demo images to create"),))]
