"""Leases and the sweeper: work in flight (queued or processing, a deleted memory whose vectors
are still kept) gets a lease that has passed, so the first sweep takes it up whatever happened to
its message. Memories indexed now are searchable."""

from django.db import migrations, models
from django.utils import timezone


def forwards(apps, schema_editor):
    Memory = apps.get_model("memories", "Memory")
    MemoryVector = apps.get_model("memories", "MemoryVector")
    Memory.objects.filter(status="indexed").update(searchable=True)
    Memory.objects.filter(status__in=["queued", "processing"]).update(lease_until=timezone.now())
    with_vectors = MemoryVector.objects.values("memory_id")
    Memory.objects.filter(status="deleted", id__in=with_vectors).update(lease_until=timezone.now())


class Migration(migrations.Migration):

    dependencies = [
        ('memories', '0006_api_key_lifecycle_audit_trail'),
    ]

    operations = [
        migrations.AddField(
            model_name='memory',
            name='lease_until',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='memory',
            name='searchable',
            field=models.BooleanField(default=False),
        ),
        migrations.AddIndex(
            model_name='memory',
            index=models.Index(fields=['uid', 'searchable'], include=('indexed_at', 'id'), name='memory_uid_searchable'),
        ),
        migrations.AddIndex(
            model_name='memory',
            index=models.Index(fields=['status', 'lease_until'], name='memory_status_lease'),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
