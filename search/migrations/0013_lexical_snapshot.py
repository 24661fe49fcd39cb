from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0012_merge"),
    ]

    operations = [
        migrations.CreateModel(
            name="LexicalSnapshot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("uid", models.CharField(max_length=128, unique=True)),
                ("layout", models.CharField(max_length=64)),
                ("listed_at", models.DateTimeField()),
                ("memories", models.PositiveIntegerField()),
                ("written_at", models.DateTimeField()),
                ("data", models.BinaryField()),
            ],
        ),
    ]
