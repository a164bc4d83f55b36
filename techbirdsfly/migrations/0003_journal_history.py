import django.db.models.functions.datetime
from django.db import migrations, models

# PostgreSQL only: the writing transaction's id on every row, so that followers read rows by what has
# committed (a snapshot) rather than by id, which commits out of order. Left out of the model so that
# every insert, the ORM's too, takes it from the default.
ADD_XID = (
    "ALTER TABLE techbirdsfly_cachejournal ADD COLUMN xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint)",
    "CREATE INDEX cachejournal_xid_idx ON techbirdsfly_cachejournal (xid)",
)
DROP_XID = ("ALTER TABLE techbirdsfly_cachejournal DROP COLUMN xid",)


def run(statements):
    def operation(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return operation


class Migration(migrations.Migration):
    dependencies = [
        ("techbirdsfly", "0002_cache_journal"),
    ]

    operations = [
        migrations.AlterField(
            model_name="cachejournal",
            name="created_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), db_index=True),
        ),
        migrations.AddIndex(
            model_name="cachejournal",
            index=models.Index(condition=models.Q(("app", "*history")), fields=["id"], name="cachejournal_history_idx"),
        ),
        migrations.RunPython(run(ADD_XID), run(DROP_XID)),
    ]
