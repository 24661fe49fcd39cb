"""The vector models move to `memories` (see memories/0005_vector_models): state only, the tables stay."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("search", "0007_clusters_duplicates"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="memoryvector", name="memory"),
                migrations.DeleteModel(name="LocalVector"),
                migrations.DeleteModel(name="LocalVectorVersion"),
                migrations.DeleteModel(name="VectorIndex"),
                migrations.DeleteModel(name="MemoryVector"),
            ],
            database_operations=[],
        ),
    ]
