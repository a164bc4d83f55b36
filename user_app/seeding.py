"""user_app's stage of ``manage.py seed_demo`` (registered in ready(): techbirdsfly/seeding.py)."""

from techbirdsfly.seeding import SeedContext, Stage, StageOption

from .demo import seed_preferences


def _run(ctx: SeedContext) -> str:
    count = seed_preferences(users=ctx.users, rng=ctx.rng("preferences"), count=ctx.option("preferences"))
    return f"{count:,} users' preferences"


STAGES = [
    Stage("preferences", _run, options=(StageOption("--preferences", 1000, "demo users given saved preferences"),))
]
