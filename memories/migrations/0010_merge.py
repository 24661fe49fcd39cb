# Joins the two 0009s: merged_into and plural names (issue 13), the index version notes its chunking (issue 14).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0009_merged_into_unmerge_and_plural_names"),
        ("memories", "0009_vector_index_notes_chunking"),
    ]

    operations = []
