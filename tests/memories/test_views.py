"""The dashboard's memory pages: list (filters, sort, pages, URL state), detail, pipeline; roles."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone as dj_timezone

from memories.models import ActionItem, AuditEvent, Event, LocalVector, Memory, MemoryVector, ReconcileRun
from search.services import search_memories
from tests.support.htmx import HTMX, assert_whole_page_or_fragment
from tests.support.transcripts import BUDGET, DENTIST, GARDEN

pytestmark = pytest.mark.django_db


def stored(uid="alice", title="A memory", status="indexed", category="other", when=None, **fields) -> Memory:
    """A memory row as the pipeline leaves it, without running the pipeline (fast)."""
    return Memory.objects.create(
        uid=uid,
        title=title,
        status=status,
        category=category,
        transcript=fields.pop("transcript", f"talk about {title}"),
        created_at=when or datetime(2025, 4, 1, 12, tzinfo=UTC),
        **fields,
    )


def titles(response) -> list[str]:
    """The memory titles in the list's table, top to bottom."""
    return re.findall(r'<span class="memory-title">([^<]*)</span>', response.content.decode())


# Sign-in and roles


def test_every_memory_page_asks_for_a_sign_in(client, db):
    memory = stored()
    for url in ["/", "/memories/", f"/memories/{memory.id}/", "/pipeline/"]:
        response = client.get(url, follow=True)
        assert response.redirect_chain[-1][0].startswith("/accounts/login/"), url
        assert b"Sign in" in response.content


def test_signing_in_with_a_password_leads_back_to_the_page_asked_for(client, db):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("ana", password="secret-pass")
    user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    wrong = client.post("/accounts/login/", {"username": "ana", "password": "nope", "next": "/pipeline/"})
    assert b"didn't match" in wrong.content
    response = client.post("/accounts/login/", {"username": "ana", "password": "secret-pass", "next": "/pipeline/"})
    assert response.status_code == 302 and response["Location"] == "/pipeline/"
    assert client.get("/pipeline/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/pipeline/").status_code == 302


def test_a_user_in_neither_group_is_refused(signed_in):
    client = signed_in(None)
    memory = stored()
    for url in ["/memories/", f"/memories/{memory.id}/", "/pipeline/"]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"Not allowed" in response.content


def test_analysts_see_no_admin_buttons_and_admin_endpoints_refuse_them(signed_in):
    analyst = signed_in("analyst")
    memory = stored(status="failed", failure_reason="extractor: boom")
    page = analyst.get(f"/memories/{memory.id}/").content.decode()
    assert "Reprocess" not in page and "Delete" not in page
    assert "Retry" not in analyst.get("/pipeline/").content.decode()
    for url in [f"/memories/{memory.id}/reprocess/", f"/memories/{memory.id}/delete/", "/pipeline/retry/"]:
        assert analyst.post(url, {"memory_id": memory.id}).status_code == 403, url
    memory.refresh_from_db()
    assert memory.status == "failed" and memory.failure_reason == "extractor: boom"


def test_htmx_posts_need_the_csrf_token(signed_in):
    admin = signed_in("admin", csrf_checks=True)
    memory = stored(status="failed", failure_reason="boom")
    assert admin.post("/pipeline/retry/", {"memory_id": memory.id}, headers=HTMX).status_code == 403
    memory.refresh_from_db()
    assert memory.status == "failed"
    page = admin.get("/pipeline/")
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else admin.cookies["csrftoken"].value
    assert "X-CSRFToken" in page.content.decode()  # sent by htmx from <body hx-headers>
    response = admin.post(f"/memories/{memory.id}/delete/", headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 302
    memory.refresh_from_db()
    assert memory.status == "deleted"


# The list


def test_filters_narrow_the_list_and_the_url_keeps_them(signed_in):
    analyst = signed_in("analyst")
    stored(uid="alice", title="Dentist visit", category="health", when=datetime(2025, 4, 2, tzinfo=UTC))
    stored(
        uid="alice",
        title="Budget plan",
        category="finance",
        when=datetime(2025, 4, 10, tzinfo=UTC),
        transcript="we should cut the grocery spending",
    )
    stored(uid="ben", title="Garden work", category="family", when=datetime(2025, 4, 5, tzinfo=UTC))
    stored(uid="alice", title="Broken one", status="failed", failure_reason="boom")
    stored(uid="alice", title="Gone", status="deleted")

    assert titles(analyst.get("/memories/")) == ["Budget plan", "Garden work", "Dentist visit", "Broken one"]
    assert titles(analyst.get("/memories/?uid=ben")) == ["Garden work"]
    assert titles(analyst.get("/memories/?uid=alice&category=health")) == ["Dentist visit"]
    assert titles(analyst.get("/memories/?status=failed")) == ["Broken one"]
    assert titles(analyst.get("/memories/?status=deleted")) == ["Gone"]
    assert titles(analyst.get("/memories/?q=GROCERY")) == ["Budget plan"]
    assert titles(analyst.get("/memories/?starts=2025-04-03&ends=2025-04-05")) == ["Garden work"]
    # The form shows the filters of the URL, so a reload or the back button lands on the same view.
    page = analyst.get("/memories/?uid=ben&category=family").content.decode()
    assert 'name="uid" value="ben"' in page and '<option value="family" selected>' in page


def test_an_htmx_filter_request_gets_only_the_table_and_a_history_restore_the_whole_page(signed_in):
    analyst = signed_in("analyst")
    stored(title="Dentist visit")
    stored(title="Budget plan")
    partial = assert_whole_page_or_fragment(analyst, "/memories/?q=dentist", fragment='<section id="results">')
    assert "Dentist visit" in partial and "Budget plan" not in partial


def test_the_pipeline_and_a_memorys_status_come_whole_or_as_their_polled_part(signed_in):
    analyst = signed_in("analyst")
    memory = stored(status="queued")
    assert_whole_page_or_fragment(analyst, "/pipeline/", fragment='<section id="pipeline-stats"')
    status = assert_whole_page_or_fragment(
        analyst, f"/memories/{memory.id}/?part=status", fragment='<section id="memory-status"'
    )
    assert 'hx-trigger="every 2s"' in status
    # a part that is not one of the page's is the whole page
    assert b"<html" in analyst.get(f"/memories/{memory.id}/?part=bogus", headers=HTMX).content


def test_bad_filter_values_are_explained_not_a_crash(signed_in):
    analyst = signed_in("analyst")
    stored(title="Dentist visit")
    response = analyst.get("/memories/?starts=not-a-date&status=bogus&sort=evil")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Start date: Enter a valid date." in page and "Status: Select a valid choice" in page
    assert titles(response) == ["Dentist visit"]  # the valid filters still apply (none here)
    reversed_range = analyst.get("/memories/?starts=2025-03-01&ends=2025-02-01")
    assert "End date: End date is before start date." in reversed_range.content.decode()
    assert titles(reversed_range) == ["Dentist visit"]  # like a bad date: shown, and left out of the filters


def test_sorting_by_a_column_and_back(signed_in):
    analyst = signed_in("analyst")
    for title in ["Banana", "Apple", "Cherry"]:
        stored(title=title)
    assert titles(analyst.get("/memories/?sort=title")) == ["Apple", "Banana", "Cherry"]
    page = analyst.get("/memories/?sort=title&uid=alice")
    assert titles(page) == ["Apple", "Banana", "Cherry"]
    assert (
        "?sort=-title&amp;uid=alice" in page.content.decode() or "?uid=alice&amp;sort=-title" in page.content.decode()
    )
    assert titles(analyst.get("/memories/?sort=-title")) == ["Cherry", "Banana", "Apple"]


def test_pages_of_25_with_links_that_keep_the_filters(signed_in):
    analyst = signed_in("analyst")
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(30):
        stored(uid="carmen", title=f"Memory {i:02d}", when=base + timedelta(days=i))
    stored(uid="dmitri", title="Other user")
    first = analyst.get("/memories/?uid=carmen")
    assert len(titles(first)) == 25 and titles(first)[0] == "Memory 29"
    assert "page 1 of 2" in first.content.decode()
    assert "?uid=carmen&amp;page=2" in first.content.decode()
    second = analyst.get("/memories/?uid=carmen&page=2")
    assert titles(second) == [f"Memory {i:02d}" for i in range(4, -1, -1)]
    assert 'href="?uid=carmen&amp;page=1"' in second.content.decode()
    # a page that is not a number is the first, one past the end the last; neither is an error
    garbled, beyond = analyst.get("/memories/?uid=carmen&page=abc"), analyst.get("/memories/?uid=carmen&page=9")
    assert titles(garbled) == titles(first) and titles(beyond) == titles(second)
    assert 'class="error"' not in garbled.content.decode()


# One memory


def test_the_detail_page_shows_everything_about_a_memory(signed_in, remember):
    admin = signed_in("admin")
    memory = remember("alice", DENTIST, started_at=datetime(2025, 4, 2, 9, tzinfo=UTC))
    other = remember("alice", BUDGET)
    remember("bob", GARDEN)
    ActionItem.objects.create(memory=memory, description="Call the dentist back")
    Event.objects.create(memory=memory, title="Dentist appointment", start=datetime(2025, 4, 9, 15, tzinfo=UTC))
    page = admin.get(f"/memories/{memory.id}/").content.decode()
    assert memory.title in page and memory.emoji in page and "indexed" in page
    assert "Call the dentist back" in page and "Dentist appointment" in page and "2025-04-09 15:00" in page
    assert "2025-04-02 09:00" in page and f"<dd>{memory.get_category_display()}</dd>" in page
    vectors = MemoryVector.objects.filter(memory=memory)
    section = page[page.index('id="memory-vectors"') : page.index('id="memory-neighbours"')]
    assert f'<td class="num">{vectors.filter(kind="memory").count()}</td>' in section
    assert "all-MiniLM-L6-v2" in section and "384" in section
    neighbours = page[page.index('id="memory-neighbours"') :]
    assert f"/memories/{other.id}/" in neighbours  # the same user's other memory, never bob's
    assert "Reprocess" in page and "Delete" in page


def test_an_unknown_memory_is_a_404_page(signed_in):
    response = signed_in("analyst").get("/memories/999999/")
    assert response.status_code == 404 and b"Not found" in response.content


def test_admin_deletes_a_memory_and_search_no_longer_finds_it(signed_in, remember):
    admin = signed_in("admin")
    memory = remember("alice", DENTIST)
    assert search_memories(uid="alice", queries=["dentist appointment"], k=3).hits
    response = admin.post(f"/memories/{memory.id}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == "/memories/"
    assert "was deleted" in response.content.decode()
    memory.refresh_from_db()
    assert memory.status == "deleted"
    assert not MemoryVector.objects.filter(memory=memory).exists()
    assert search_memories(uid="alice", queries=["dentist appointment"], k=3).hits == []


def test_admin_reprocesses_a_failed_memory_in_place(signed_in):
    admin = signed_in("admin")
    memory = stored(status="failed", failure_reason="extractor: timed out", transcript=DENTIST, title="")
    response = admin.post(f"/memories/{memory.id}/reprocess/", headers=HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="memory-status"') and "queued to be processed again" in body
    memory.refresh_from_db()  # in-process, the pipeline has run once the request committed
    assert memory.status == "indexed" and memory.failure_reason == "" and memory.title


def test_reprocessing_a_memory_that_is_being_processed_is_explained(signed_in):
    admin = signed_in("admin")
    now = dj_timezone.now()
    memory = stored(status="processing", claimed_at=now, lease_until=now + timedelta(minutes=1))
    page = admin.post(f"/memories/{memory.id}/reprocess/", follow=True).content.decode()
    assert "cannot be reprocessed now" in page
    memory.refresh_from_db()
    assert memory.status == "processing"


def test_the_status_of_a_memory_in_flight_refreshes_itself(signed_in):
    analyst = signed_in("analyst")
    memory = stored(status="queued")
    page = analyst.get(f"/memories/{memory.id}/").content.decode()
    assert 'hx-trigger="every 2s"' in page
    Memory.objects.filter(id=memory.id).update(status="indexed")
    poll = analyst.get(f"/memories/{memory.id}/?part=status", headers=HTMX)
    assert poll["HX-Refresh"] == "true"  # done: the page reloads to show the result
    assert 'hx-trigger="every 2s"' not in analyst.get(f"/memories/{memory.id}/").content.decode()


# Pipeline


def test_the_pipeline_page_counts_statuses_and_lists_failures_with_reasons(signed_in):
    analyst = signed_in("analyst")
    now = dj_timezone.now()
    for minutes in (2, 7, 30):
        stored(indexed_at=now - timedelta(minutes=minutes))
    stored(indexed_at=now - timedelta(hours=3))
    stored(status="queued")
    stored(status="failed", failure_reason="vector store: 503 from pinecone", title="Unlucky")
    page = analyst.get("/pipeline/").content.decode()
    count = lambda status: re.search(rf'id="count-{status}">.*?class="count">(\d+)<', page, re.S).group(1)  # noqa: E731
    assert (count("indexed"), count("queued"), count("failed"), count("processing")) == ("4", "1", "1", "0")
    assert "3 indexed · 0.05 per minute" in page
    assert "vector store: 503 from pinecone" in page and "Unlucky" in page
    assert 'hx-trigger="every 2s"' in page  # work is under way: refresh often


def test_retry_one_and_retry_all_run_failed_memories_again(signed_in):
    admin = signed_in("admin")
    first = stored(status="failed", failure_reason="boom", transcript=DENTIST, title="")
    second = stored(status="failed", failure_reason="boom", transcript=BUDGET, title="")
    third = stored(status="failed", failure_reason="boom", transcript=GARDEN, title="")
    body = admin.post("/pipeline/retry/", {"memory_id": first.id}, headers=HTMX).content.decode()
    assert "1 failed memory queued again" in body
    assert [m.status for m in Memory.objects.filter(id__in=[first.id, second.id, third.id]).order_by("id")] == [
        "indexed",
        "failed",
        "failed",
    ]
    response = admin.post("/pipeline/retry/", follow=True)
    assert "2 failed memories queued again" in response.content.decode()
    assert set(Memory.objects.values_list("status", flat=True)) == {"indexed"}
    assert "No failed memories" in response.content.decode()
    again = admin.post("/pipeline/retry/", {"memory_id": first.id}, follow=True).content.decode()
    assert "is not failed" in again
    garbled = admin.post("/pipeline/retry/", {"memory_id": "first"}, follow=True).content.decode()
    assert "The memory to retry is given by its number." in garbled


def test_the_last_hour_is_a_chart_with_axes_and_the_count_of_each_5_minutes(signed_in):
    now = dj_timezone.now()
    for minutes in (2, 3, 4, 17):
        stored(indexed_at=now - timedelta(minutes=minutes))
    page = signed_in("analyst").get("/pipeline/").content.decode()
    chart = re.search(r'<svg id="last-hour".*?</svg>', page, re.S).group(0)
    assert 'aria-label="memories indexed per 5 minutes over the last hour"' in chart
    written = re.findall(
        r'<g class="chart-bar">\s*<title>([^<]*)</title>\s*<rect[^>]*></rect>\s*(?:<text[^>]*>(\d+)</text>)?', chart
    )
    assert len(written) == 12  # a column per 5 minutes, oldest first
    assert written[-1] == ("5 to 0 min ago: 3", "3") and written[-4] == ("20 to 15 min ago: 1", "1")
    assert written[0] == ("60 to 55 min ago: 0", "")  # an empty column writes no 0 over itself
    assert ">minutes ago</text>" in chart and ">indexed</text>" in chart and ">now</text>" in chart


# Reconciliation on the pipeline page


def test_the_pipeline_page_shows_the_last_reconciliation_and_what_it_found(signed_in):
    analyst = signed_in("analyst")
    finding = {"kind": "missing", "vector_id": "alice-7-c1", "uid": "alice", "memory_id": 7, "detail": "memory 7 is"}
    ReconcileRun.objects.create(
        trigger="schedule",
        status="done",
        store="local/ns1",
        finished_at=dj_timezone.now(),
        memories_checked=5,
        vectors_checked=40,
        missing=1,
        findings=[finding],
    )

    page = analyst.get("/pipeline/").content.decode()

    assert re.search(r"Last reconciliation: #\d+, .* UTC,\s+schedule;", page)
    assert "every user in local/ns1: 5 indexed memories, 40 vectors checked" in page
    assert re.search(r'id="reconcile-missing">.*?class="count">1<', page, re.S)
    assert "alice-7-c1" in page and 'href="/memories/7/"' in page
    assert "Reconcile now" not in page  # analysts see no button
    assert analyst.post("/pipeline/reconcile/").status_code == 403
    assert not ReconcileRun.objects.exclude(status="done").exists()


def test_an_admin_reconciles_from_the_pipeline_page_with_repair_and_it_is_audited(signed_in, remember):
    admin = signed_in("admin")
    memory = remember("alice", DENTIST)
    LocalVector.objects.filter(record_id=memory.vector_id).delete()
    assert "No reconciliation yet" in admin.get("/pipeline/").content.decode()

    body = admin.post("/pipeline/reconcile/", {"repair": "1"}, headers=HTMX).content.decode()
    assert re.search(r"Reconciliation #\d+ started: it will compare and repair every user", body)
    assert 'hx-trigger="every 2s"' in body  # under way: the page follows it

    page = admin.get("/pipeline/").content.decode()  # the task ran once the request committed
    assert re.search(r'id="reconcile-missing">.*?class="count">1<', page, re.S)
    assert re.search(r'id="reconcile-repaired">.*?class="count">1 · 0<', page, re.S)
    assert memory.vector_id in page and "dashboard (admin), repairing" in page
    assert LocalVector.objects.filter(record_id=memory.vector_id).exists()
    audit = AuditEvent.objects.get(action="vectors.reconcile")
    assert (audit.actor_name, audit.origin, audit.details["repair"]) == ("admin", "dashboard", True)

    ReconcileRun.objects.create(trigger="command", status="running")
    refused = admin.post("/pipeline/reconcile/", follow=True).content.decode()
    assert re.search(r"reconciliation #\d+ is under way", refused)
    assert AuditEvent.objects.filter(action="vectors.reconcile").count() == 1


def test_each_count_on_the_pipeline_page_links_to_the_memory_list_of_that_status(signed_in):
    analyst = signed_in("analyst")
    stored(status="failed", failure_reason="boom", title="Unlucky")
    stored(title="Lucky")

    page = analyst.get("/pipeline/").content.decode()
    failed_list = analyst.get("/memories/?status=failed").content.decode()

    for status in Memory.Status.values:
        assert f'href="/memories/?status={status}" title="the {status} memories" id="count-{status}"' in page
    assert "Unlucky" in failed_list and "Lucky</" not in failed_list
