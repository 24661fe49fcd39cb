import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0013_lexical_snapshot"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="clusterrun",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="clusterrun",
            name="updated_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="duplicatescan",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="duplicatescan",
            name="updated_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddIndex(
            model_name="clusterrun",
            index=models.Index(fields=["status", "updated_at"], name="search_clus_status_3872ac_idx"),
        ),
        migrations.AddIndex(
            model_name="duplicatescan",
            index=models.Index(fields=["status", "updated_at"], name="search_dupl_status_e1a1e7_idx"),
        ),
    ]
