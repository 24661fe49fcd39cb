"""The audit trail: each destructive or privileged action, from the dashboard, the API or a
command, leaves exactly one record of who, what, when and from where, committed with the action;
nobody can change or remove one (the model, the admin and the database refuse); admins read it
on /audit/."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from memories.models import ApiKey, AuditEvent, Memory
from memories.services import audit_record, memory_delete
from search.models import DuplicatePair
from tests.support.actors import COMMAND
from tests.support.htmx import HTMX, assert_whole_page_or_fragment
from tests.support.transactions import committed
from tests.support.transcripts import DENTIST

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chromium/140"


def stored(uid="alice", status="indexed", title="A memory") -> Memory:
    """A memory row as the pipeline leaves it, without running the pipeline (fast)."""
    return Memory.objects.create(uid=uid, status=status, title=title, transcript=f"Alice: {title}")


def pair_of(uid="alice") -> DuplicatePair:
    first, second = stored(uid, title="dentist"), stored(uid, title="dentist again")
    return DuplicatePair.objects.create(uid=uid, memory_a=first, memory_b=second, similarity=0.97)


def a_key(*, uid: str = "", raw: str = "omk_testkey-secret") -> ApiKey:
    """A key row made directly (its making is not what a test is about, so it leaves no record)."""
    return ApiKey.objects.create(name="old app", prefix=raw[:12], key_hash=ApiKey.hash(raw), uid=uid)


def the_one_record() -> AuditEvent:
    records = list(AuditEvent.objects.all())
    assert len(records) == 1, [(r.action, r.actor_name) for r in records]
    return records[0]


@pytest.fixture
def admin(signed_in):
    """An admin's browser: what it posts carries a user agent, from 127.0.0.1 (the test client's)."""
    client = signed_in("admin", username="ada")
    client.defaults["HTTP_USER_AGENT"] = BROWSER
    return client


# Each action, from each place it can come from, leaves exactly one record.


def _dashboard_actions():
    """(action, what to post, what the record's uid and target ids are) for each dashboard action."""

    def delete(client):
        memory = stored()
        client.post(reverse("memory_delete", args=[memory.id]))
        return "alice", [memory.id]

    def reprocess(client):
        memory = stored(status="failed")
        client.post(reverse("memory_reprocess", args=[memory.id]))
        return "alice", [memory.id]

    def retry_failed(client):
        memory = stored(uid="ben", status="failed")
        client.post(reverse("pipeline_retry"))
        return "ben", [memory.id]

    def merge(client):
        pair = pair_of()
        client.post(reverse("duplicate_merge", args=[pair.id]), {"keep": pair.memory_a_id})
        return "alice", [pair.id]

    def dismiss(client):
        pair = pair_of()
        client.post(reverse("duplicate_dismiss", args=[pair.id]))
        return "alice", [pair.id]

    def scan(client):
        client.post(reverse("duplicate_scan"), {"uid": "alice"})
        return "alice", []

    def cluster(client):
        for n in range(3):
            stored(title=f"memory {n}")
        client.post(reverse("cluster_run"), {"uid": "alice", "k": "2"})
        return "alice", [AuditEvent.objects.get().target_ids[0]]

    def create_key(client):
        client.post(reverse("api_key_create"), {"name": "mobile app", "uid": "alice"})
        return "alice", [ApiKey.objects.get().id]

    def revoke_key(client):
        key = a_key(uid="ben")
        client.post(reverse("api_key_revoke", args=[key.id]))
        return "ben", [key.id]

    def expire_key(client):
        key = a_key(uid="ben")
        client.post(reverse("api_key_expire", args=[key.id]), {"expires_on": "2099-01-01"})
        return "ben", [key.id]

    return {
        "memory.delete": delete,
        "memory.reprocess": reprocess,
        "memory.retry_failed": retry_failed,
        "duplicates.merge": merge,
        "duplicates.dismiss": dismiss,
        "duplicates.scan": scan,
        "clusters.run": cluster,
        "api_key.create": create_key,
        "api_key.revoke": revoke_key,
        "api_key.expire": expire_key,
    }


@pytest.mark.parametrize("action", list(_dashboard_actions()))
def test_each_dashboard_action_leaves_one_record_of_the_admin_their_address_and_browser(admin, action):
    uid, targets = _dashboard_actions()[action](admin)

    record = the_one_record()
    assert record.action == action
    assert (record.actor_type, record.actor_name, record.actor_user_id) == ("user", "ada", admin.user.id)
    assert (record.origin, record.ip_address, record.user_agent) == ("dashboard", "127.0.0.1", BROWSER)
    assert (record.uid, record.target_ids) == (uid, targets)


def test_api_deletes_and_reprocesses_leave_one_record_each_of_the_key_and_address(api_for):
    client = api_for("alice")
    key = ApiKey.objects.get()
    gone, again = stored(), stored(status="failed")

    assert client.delete(f"/memories/{gone.id}").status_code == 204
    assert client.post(f"/memories/{again.id}/reprocess").status_code == 202

    records = list(AuditEvent.objects.exclude(action="api_key.create").order_by("id"))
    assert [(r.action, r.target_ids, r.uid) for r in records] == [
        ("memory.delete", [gone.id], "alice"),
        ("memory.reprocess", [again.id], "alice"),
    ]
    for record in records:
        assert (record.actor_type, record.actor_key_id, record.origin, record.ip_address) == (
            "api_key",
            key.id,
            "api",
            "127.0.0.1",
        )
        assert record.actor_name == f"{key.prefix}… (key for alice)"


def test_erase_user_from_the_command_line_leaves_one_record_of_the_os_user(capsys):
    kept = stored(uid="ben")
    for _ in range(2):
        stored(uid="alice")

    with committed():
        call_command("erase_user", "alice", "--yes")

    record = the_one_record()
    assert (record.action, record.uid, record.details) == ("user.erase", "alice", {"memories": 2})
    assert (record.actor_type, record.actor_name, record.origin) == ("command", COMMAND.name, "command line")
    assert (record.ip_address, record.user_agent, record.actor_label) == (None, "", f"command ({COMMAND.name})")
    assert Memory.objects.get(id=kept.id).status == "indexed"


@pytest.mark.parametrize(
    "command, arguments, action",
    [
        ("create_api_key", ["--name", "cron", "--uid", "alice", "--expires-in", "30"], "api_key.create"),
        ("revoke_api_key", ["{key}"], "api_key.revoke"),
        ("expire_api_key", ["{key}", "--expires-at", "2099-01-01"], "api_key.expire"),
    ],
)
def test_key_commands_leave_one_record_each_of_the_command_line(command, arguments, action):
    key = a_key(uid="alice")

    call_command(command, *[argument.format(key=key.id) for argument in arguments])

    record = the_one_record()
    assert (record.action, record.actor_type, record.origin, record.uid) == (action, "command", "command line", "alice")
    assert "secret" not in str(record.details) and "key_hash" not in record.details


def test_an_action_that_is_refused_leaves_no_record(admin):
    memory = stored(status="processing")
    pair = pair_of()
    Memory.objects.filter(id=pair.memory_b_id).update(status="deleted")

    admin.post(reverse("memory_reprocess", args=[memory.id]))  # busy: 409 in the API, a message here
    admin.post(reverse("duplicate_merge", args=[pair.id]), {"keep": pair.memory_a_id})  # one of them is gone
    admin.post(reverse("pipeline_retry"))  # nothing failed: nothing to retry

    assert not AuditEvent.objects.exists()


def test_an_action_whose_record_cannot_be_written_does_not_happen(monkeypatch):
    memory = stored()

    def refuse(**fields):
        raise IntegrityError("the audit table is unavailable")

    monkeypatch.setattr(AuditEvent.objects, "create", refuse)
    with pytest.raises(IntegrityError), committed() as callbacks:
        memory_delete(memory=memory, actor=COMMAND)

    assert Memory.objects.get(id=memory.id).status == "indexed"
    assert callbacks == []  # and its vectors were not queued for removal


@pytest.mark.django_db(transaction=True)  # autocommit, as outside a request or a service's transaction
def test_a_record_outside_the_actions_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=COMMAND, action=AuditEvent.Action.USER_ERASE, uid="alice")

    assert not AuditEvent.objects.exists()


# Append-only: the database, the model and the admin refuse to change or remove a record.


@pytest.fixture
def record() -> AuditEvent:
    with transaction.atomic():
        return audit_record(actor=COMMAND, action=AuditEvent.Action.USER_ERASE, uid="alice", details={"memories": 3})


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE memories_auditevent SET actor_name = 'someone else' WHERE id = %s",
        "DELETE FROM memories_auditevent WHERE id = %s",
    ],
)
def test_the_database_refuses_an_update_or_a_delete_in_raw_sql(record, sql):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [record.id])

    with connection.cursor() as cursor:
        cursor.execute("SELECT actor_name, uid FROM memories_auditevent WHERE id = %s", [record.id])
        assert cursor.fetchall() == [(COMMAND.name, "alice")]


def test_the_model_refuses_to_change_or_delete_a_record(record):
    record.actor_name = "someone else"
    for change in (
        record.save,
        record.delete,
        lambda: AuditEvent.objects.filter(id=record.id).update(uid="bob"),
        lambda: AuditEvent.objects.filter(id=record.id).delete(),
    ):
        with pytest.raises(IntegrityError, match="append-only"):
            change()

    assert AuditEvent.objects.get(id=record.id).actor_name == COMMAND.name


def test_the_admin_shows_records_and_offers_no_add_change_or_delete(client, record):
    client.force_login(User.objects.create_superuser("root", password="pw"))

    listing = client.get("/admin/memories/auditevent/").content.decode()
    assert "user.erase" in listing or "user erased" in listing
    assert "/admin/memories/auditevent/add/" not in listing
    assert client.get("/admin/memories/auditevent/add/").status_code == 403
    assert client.post(f"/admin/memories/auditevent/{record.id}/delete/", {"post": "yes"}).status_code == 403
    client.post(f"/admin/memories/auditevent/{record.id}/change/", {"uid": "bob"})
    assert AuditEvent.objects.get(id=record.id).uid == "alice"


def test_the_django_admin_cannot_delete_a_memory_behind_the_services_back(client, remember):
    memory = remember("alice", DENTIST)
    client.force_login(User.objects.create_superuser("root", password="pw"))

    assert client.post(f"/admin/memories/memory/{memory.id}/delete/", {"post": "yes"}).status_code == 403
    changelist = client.post(
        "/admin/memories/memory/", {"action": "delete_selected", "_selected_action": [memory.id], "post": "yes"}
    )

    assert changelist.status_code == 200 and "delete_selected" not in changelist.content.decode()  # not offered
    assert Memory.objects.get(id=memory.id).status == "indexed"
    assert not AuditEvent.objects.exists()


# The page: admins only, filtered, paged.


def recorded(action: str, *, actor: str = "ada", uid: str = "alice", when: datetime | None = None) -> AuditEvent:
    """A record as a service writes it, of a dashboard user or (actor "command") a command, made `when`."""
    who = {"actor_type": "command", "actor_name": COMMAND.name, "origin": "command line"}
    if actor != "command":
        who = {"actor_type": "user", "actor_name": actor, "origin": "dashboard", "ip_address": "10.0.0.8"}
    return AuditEvent.objects.create(
        action=action, uid=uid, target_type="memory", target_ids=[7], created_at=when or timezone.now(), **who
    )


def rows(response) -> list[int]:
    import re

    return [int(n) for n in re.findall(r'id="audit-(\d+)"', response.content.decode())]


def test_the_audit_page_is_for_admins_only_and_only_they_see_it_in_the_nav(signed_in, client, record):
    analyst = signed_in("analyst")
    assert analyst.get("/audit/").status_code == 403
    assert "/audit/" not in analyst.get("/memories/").content.decode()
    assert client.get("/audit/").status_code == 302  # to sign in
    admin = signed_in("admin")
    assert 'href="/audit/"' in admin.get("/memories/").content.decode()
    page = admin.get("/audit/")
    assert page.status_code == 200 and rows(page) == [record.id]
    assert f"command ({COMMAND.name})" in page.content.decode() and "command line" in page.content.decode()


def test_the_audit_page_filters_by_action_actor_uid_and_dates(signed_in):
    admin = signed_in("admin")
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    deleted = recorded("memory.delete", actor="ada", uid="alice", when=day)
    merged = recorded("duplicates.merge", actor="bruno", uid="ben", when=day + timedelta(days=2))
    erased = recorded("user.erase", actor="command", uid="carmen", when=day + timedelta(days=4))

    assert rows(admin.get("/audit/")) == [erased.id, merged.id, deleted.id]
    assert rows(admin.get("/audit/", {"action": "duplicates.merge"})) == [merged.id]
    assert rows(admin.get("/audit/", {"actor": "BRU"})) == [merged.id]
    assert rows(admin.get("/audit/", {"actor": "command"})) == [erased.id]
    assert rows(admin.get("/audit/", {"uid": "alice"})) == [deleted.id]
    assert rows(admin.get("/audit/", {"starts": "2026-03-11", "ends": "2026-03-12"})) == [merged.id]
    both = admin.get("/audit/", {"starts": "2026-03-14", "ends": "2026-03-10"})
    assert "End date: End date is before start date." in both.content.decode()
    assert rows(both) == rows(admin.get("/audit/", {"starts": "2026-03-14"}))  # the end date left out, as a bad one


def test_the_audit_page_is_paged_and_answers_htmx_with_its_results(signed_in):
    admin = signed_in("admin")
    events = [recorded("memory.reprocess").id for _ in range(53)]

    first, second = admin.get("/audit/"), admin.get("/audit/", {"page": 2})
    assert rows(first) == events[::-1][:50] and rows(second) == events[::-1][50:]
    assert "page 1 of 2" in first.content.decode()
    fragment = assert_whole_page_or_fragment(admin, "/audit/?action=memory.reprocess", fragment='<section id="results"')
    assert "53 events" in fragment
    assert admin.get("/audit/", {"page": 2}, headers=HTMX).content.decode().lstrip().startswith('<section id="results"')
