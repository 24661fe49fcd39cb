"""API keys get a creator, an expiry and a revocation (a key that was inactive is revoked now;
every other key keeps working, with no expiry); the audit trail, append-only in the database too:
triggers refuse UPDATE and DELETE on its table, on PostgreSQL and SQLite. Only the database's
owner can drop them (or TRUNCATE the table on PostgreSQL, which row triggers do not see)."""

import django.utils.timezone
from django.db import migrations, models

TABLE = "memories_auditevent"
REFUSED = "the audit trail is append-only"

# Per vendor: the statements that make the triggers, and those that remove them (in reverse).
TRIGGERS = {
    "postgresql": (
        [
            f"""
            CREATE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{REFUSED}: % is refused', TG_OP USING ERRCODE = 'restrict_violation';
            END;
            $$
            """,
            f"""
            CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
            FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()
            """,
        ],
        [f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}", f"DROP FUNCTION IF EXISTS {TABLE}_append_only()"],
    ),
    "sqlite": (
        [
            f"""
            CREATE TRIGGER {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE}
            BEGIN SELECT RAISE(ABORT, '{REFUSED}: {operation} is refused'); END
            """
            for operation in ("UPDATE", "DELETE")
        ],
        [f"DROP TRIGGER IF EXISTS {TABLE}_no_{operation}" for operation in ("update", "delete")],
    ),
}


def create_triggers(apps, schema_editor):
    for statement in TRIGGERS.get(schema_editor.connection.vendor, ([], []))[0]:
        schema_editor.execute(statement, params=None)  # no parameters: a % in the SQL is its own


def drop_triggers(apps, schema_editor):
    for statement in TRIGGERS.get(schema_editor.connection.vendor, ([], []))[1]:
        schema_editor.execute(statement, params=None)  # no parameters: a % in the SQL is its own


def revoke_inactive_keys(apps, schema_editor):
    ApiKey = apps.get_model("memories", "ApiKey")
    ApiKey.objects.filter(is_active=False).update(revoked_at=django.utils.timezone.now(), revoked_by="migration")


def reactivate_flags(apps, schema_editor):
    ApiKey = apps.get_model("memories", "ApiKey")
    ApiKey.objects.exclude(revoked_at=None).update(is_active=False)


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0005_vector_models"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="apikey",
            options={"ordering": ["-created_at", "-id"], "verbose_name": "API key"},
        ),
        migrations.AddField(
            model_name="apikey",
            name="created_by",
            field=models.CharField(blank=True, max_length=150),
        ),
        migrations.AddField(
            model_name="apikey",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apikey",
            name="revoked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apikey",
            name="revoked_by",
            field=models.CharField(blank=True, max_length=150),
        ),
        migrations.RunPython(revoke_inactive_keys, reactivate_flags),
        migrations.RemoveField(
            model_name="apikey",
            name="is_active",
        ),
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("memory.delete", "memory deleted"),
                            ("memory.reprocess", "memory reprocessed"),
                            ("memory.retry_failed", "failed memories retried"),
                            ("user.erase", "user erased"),
                            ("duplicates.merge", "duplicates merged"),
                            ("duplicates.dismiss", "duplicates dismissed"),
                            ("duplicates.scan", "duplicate scan started"),
                            ("clusters.run", "clustering started"),
                            ("api_key.create", "API key created"),
                            ("api_key.revoke", "API key revoked"),
                            ("api_key.expire", "API key expiry set"),
                        ],
                        max_length=32,
                    ),
                ),
                (
                    "actor_type",
                    models.CharField(
                        choices=[("user", "dashboard user"), ("api_key", "API key"), ("command", "command")],
                        max_length=16,
                    ),
                ),
                ("actor_name", models.CharField(max_length=150)),
                ("actor_user_id", models.BigIntegerField(blank=True, null=True)),
                ("actor_key_id", models.BigIntegerField(blank=True, null=True)),
                ("origin", models.CharField(max_length=16)),
                ("ip_address", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, max_length=300)),
                ("uid", models.CharField(blank=True, db_index=True, max_length=128)),
                ("target_type", models.CharField(blank=True, max_length=32)),
                ("target_ids", models.JSONField(blank=True, default=list)),
                ("details", models.JSONField(blank=True, default=dict)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [models.Index(fields=["action", "created_at"], name="memories_au_action_f50b29_idx")],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
