# The audit actions of search experiments; also merges the two 0011 migrations (index versions, profiles).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('memories', '0011_audit_profile_actions'),
        ('memories', '0011_index_versions'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('memory.delete', 'memory deleted'), ('memory.reprocess', 'memory reprocessed'), ('memory.retry_failed', 'failed memories retried'), ('user.erase', 'user erased'), ('duplicates.merge', 'duplicates merged'), ('duplicates.unmerge', 'duplicates unmerged'), ('duplicates.dismiss', 'duplicates dismissed'), ('duplicates.scan', 'duplicate scan started'), ('clusters.run', 'clustering started'), ('api_key.create', 'API key created'), ('api_key.revoke', 'API key revoked'), ('api_key.expire', 'API key expiry set'), ('vectors.reconcile', 'vector reconciliation started'), ('experiment.create', 'search experiment defined'), ('experiment.start', 'search experiment started'), ('experiment.pause', 'search experiment paused'), ('experiment.end', 'search experiment ended'), ('profile.activate', 'parameter profile activated'), ('profile.deactivate', 'parameter profile deactivated'), ('index.build', 'index version build started'), ('index.activate', 'index version activated'), ('index.drop', 'index version dropped')], max_length=32),
        ),
    ]
