"""The vector models move from `search` to `memories` (the pipeline owns them): state only. The
tables keep their names (`db_table`), so no row is copied and an existing database migrates in
place; their content types follow, so permissions and admin history stay attached."""

import django.db.models.deletion
from django.db import migrations, models

MODELS = ("vectorindex", "localvector", "localvectorversion", "memoryvector")


def move_content_types(apps, schema_editor, *, source="search", target="memories"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MODELS:
        if not ContentType.objects.filter(app_label=target, model=model).exists():
            ContentType.objects.filter(app_label=source, model=model).update(app_label=target)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, source="memories", target="search")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("memories", "0004_memory_version_index"),
        ("search", "0008_vector_models_moved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='VectorIndex',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('store', models.CharField(max_length=300, unique=True)),
                        ('model', models.CharField(max_length=128)),
                        ('dim', models.PositiveIntegerField()),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        'db_table': 'search_vectorindex',
                    },
                ),
                migrations.CreateModel(
                    name='LocalVector',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('namespace', models.CharField(max_length=64)),
                        ('record_id', models.CharField(max_length=300)),
                        ('uid', models.CharField(max_length=128)),
                        ('memory_id', models.CharField(max_length=64)),
                        ('created_at', models.BigIntegerField()),
                        ('category', models.CharField(blank=True, max_length=32)),
                        ('source', models.CharField(blank=True, max_length=32)),
                        ('kind', models.CharField(blank=True, max_length=16)),
                        ('metadata', models.JSONField(default=dict)),
                        ('values', models.BinaryField()),
                    ],
                    options={
                        'db_table': 'search_localvector',
                        'indexes': [models.Index(fields=['namespace', 'uid', 'created_at'], name='search_loca_namespa_275c93_idx'), models.Index(fields=['namespace', 'memory_id'], name='search_loca_namespa_84c966_idx')],
                        'constraints': [models.UniqueConstraint(fields=('namespace', 'record_id'), name='local_vector_id')],
                    },
                ),
                migrations.CreateModel(
                    name='LocalVectorVersion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('namespace', models.CharField(max_length=64)),
                        ('uid', models.CharField(max_length=128)),
                        ('version', models.CharField(max_length=32)),
                    ],
                    options={
                        'db_table': 'search_localvectorversion',
                        'constraints': [models.UniqueConstraint(fields=('namespace', 'uid'), name='local_vector_version')],
                    },
                ),
                migrations.CreateModel(
                    name='MemoryVector',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('position', models.PositiveIntegerField()),
                        ('kind', models.CharField(default='memory', max_length=16)),
                        ('vector_id', models.CharField(max_length=300, unique=True)),
                        ('text', models.TextField(blank=True)),
                        ('model', models.CharField(max_length=128)),
                        ('dim', models.PositiveIntegerField()),
                        ('vector', models.BinaryField()),
                        ('memory', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='vectors', to='memories.memory')),
                    ],
                    options={
                        'db_table': 'search_memoryvector',
                        'ordering': ['memory_id', 'position'],
                        'constraints': [models.UniqueConstraint(fields=('memory', 'position'), name='memory_vector_position')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
