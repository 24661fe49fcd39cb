import pytest
from django.urls import reverse

from memories.models import Memory
from search.models import DuplicatePair
from tests.support.htmx import assert_whole_page_or_fragment
from tests.support.memories import indexed_memory
from tests.support.transcripts import BUDGET, DENTIST

pytestmark = pytest.mark.django_db

DENTIST_AGAIN = DENTIST.replace("next Tuesday at 3pm", "Tuesday next week at 3pm")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(scope="module")
def alices_dentist_visit_twice(shared_rows) -> int:
    """Alice's dentist visit, remembered twice, and her budget talk: made once for the module (what
    a test changes, a merge or a dismissal, is rolled back after it). Returns the pair's id."""
    with shared_rows():
        indexed_memory("alice", DENTIST)
        indexed_memory("alice", DENTIST_AGAIN)
        indexed_memory("alice", BUDGET)
        yield DuplicatePair.objects.get().id


@pytest.fixture
def pair(alices_dentist_visit_twice) -> DuplicatePair:
    """The one open pair, found when the second dentist visit was indexed."""
    return DuplicatePair.objects.get(id=alices_dentist_visit_twice)


def merge_url(pair) -> str:
    return reverse("duplicate_merge", args=[pair.id])


def test_anonymous_visitors_are_sent_to_sign_in(client, pair):
    response = client.get(reverse("duplicate_list"))

    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    assert client.post(merge_url(pair), {"keep": pair.memory_a_id}).status_code == 302
    assert DuplicatePair.objects.get().status == "open"


def test_a_user_in_no_group_is_refused(signed_in, pair):
    assert signed_in(None).get(reverse("duplicate_list")).status_code == 403


def test_an_analyst_sees_the_queue_without_buttons_and_may_not_post(signed_in, pair):
    analyst = signed_in("analyst")

    page = analyst.get(reverse("duplicate_list")).content.decode()

    assert f'id="pair-{pair.id}"' in page
    assert pair.memory_a.title in page and pair.memory_b.title in page
    assert "Keep left, merge right" not in page and "Not duplicates" not in page
    assert "Scan for duplicates" not in page
    assert analyst.post(merge_url(pair), {"keep": pair.memory_a_id}).status_code == 403
    assert analyst.post(reverse("duplicate_dismiss", args=[pair.id])).status_code == 403
    assert analyst.post(reverse("duplicate_scan"), {"uid": "alice"}).status_code == 403
    assert DuplicatePair.objects.get().status == "open"


def test_an_admin_sees_both_memories_side_by_side_with_the_similarity_and_buttons(signed_in, pair):
    page = signed_in("admin").get(reverse("duplicate_list")).content.decode()

    assert f"{pair.similarity:.3f}" in page
    assert reverse("memory_detail", args=[pair.memory_a_id]) in page
    assert reverse("memory_detail", args=[pair.memory_b_id]) in page
    assert "Keep left, merge right" in page and "Keep right, merge left" in page and "Not duplicates" in page
    assert "Scan for duplicates" in page


def test_admin_merge_through_htmx_returns_the_merged_card(signed_in, pair):
    response = signed_in("admin").post(merge_url(pair), {"keep": pair.memory_b_id}, **HTMX)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<article class="card pair" id="pair-{pair.id}"')
    assert "merged" in body and "kept" in body and "Keep left" not in body
    assert "<html" not in body
    assert Memory.objects.get(id=pair.memory_a_id).status == Memory.Status.DELETED
    assert Memory.objects.get(id=pair.memory_b_id).status == Memory.Status.INDEXED


def test_admin_dismiss_through_htmx_returns_the_dismissed_card(signed_in, pair):
    response = signed_in("admin").post(reverse("duplicate_dismiss", args=[pair.id]), **HTMX)

    body = response.content.decode()
    assert response.status_code == 200 and f'id="pair-{pair.id}"' in body
    assert "dismissed" in body and "Not duplicates" not in body
    assert DuplicatePair.objects.get().status == "dismissed"


def test_the_queues_count_follows_a_pair_that_leaves_it(signed_in, pair):
    """The card is swapped in place; the count above the queue comes along out of band, counted
    with the queue's own filters (taken from the page the form was on)."""
    admin = signed_in("admin")
    before = admin.get(reverse("duplicate_list"), {"uid": "alice"}).content.decode()
    assert "1 pair for alice, open." in before

    back = reverse("duplicate_list") + "?uid=alice&status=open"
    body = admin.post(reverse("duplicate_dismiss", args=[pair.id]), {"next": back}, **HTMX).content.decode()

    assert body.lstrip().startswith(f'<article class="card pair" id="pair-{pair.id}"')
    assert '<p id="pair-count" class="muted small" hx-swap-oob="true">0 pairs for alice, open.</p>' in body
    every = admin.post(merge_url(pair), {"keep": pair.memory_a_id, "next": back.replace("open", "all")}, **HTMX)
    assert "1 pair for alice, all." in every.content.decode()  # still one pair among all of them


def test_a_second_merge_of_the_same_pair_shows_the_error_on_the_card(signed_in, pair):
    admin = signed_in("admin")
    admin.post(reverse("duplicate_dismiss", args=[pair.id]), **HTMX)

    body = admin.post(merge_url(pair), {"keep": pair.memory_a_id}, **HTMX).content.decode()

    assert "is dismissed, not open" in body
    assert Memory.objects.filter(status=Memory.Status.DELETED).count() == 0


def test_without_javascript_the_buttons_post_and_redirect_back(signed_in, pair):
    admin = signed_in("admin")
    back = reverse("duplicate_list") + "?uid=alice&status=open"

    response = admin.post(reverse("duplicate_dismiss", args=[pair.id]), {"next": back})

    assert response.status_code == 302 and response.url == back
    assert "not be raised again" in admin.get(back).content.decode()
    outside = admin.post(merge_url(pair), {"keep": pair.memory_a_id, "next": "https://evil.example/"})
    assert outside.url == reverse("duplicate_list")


def test_csrf_is_enforced(signed_in, pair):
    admin = signed_in("admin", csrf_checks=True)

    assert admin.post(merge_url(pair), {"keep": pair.memory_a_id}, **HTMX).status_code == 403
    assert admin.post(reverse("duplicate_dismiss", args=[pair.id])).status_code == 403
    assert DuplicatePair.objects.get().status == "open"


def test_filters_by_uid_and_status_in_the_url(signed_in, remember, pair):
    remember("bob", DENTIST)
    remember("bob", DENTIST_AGAIN)
    bobs = DuplicatePair.objects.get(uid="bob")
    admin = signed_in("admin")
    admin.post(reverse("duplicate_dismiss", args=[bobs.id]))
    url = reverse("duplicate_list")

    default = admin.get(url).content.decode()
    bob_open = admin.get(url, {"uid": "bob"}).content.decode()
    bob_dismissed = admin.get(url, {"uid": "bob", "status": "dismissed"}, **HTMX).content.decode()
    everything = admin.get(url, {"status": "all"}).content.decode()

    assert f'id="pair-{pair.id}"' in default and f'id="pair-{bobs.id}"' not in default
    assert f'id="pair-{pair.id}"' not in bob_open and f'id="pair-{bobs.id}"' not in bob_open
    assert f'id="pair-{bobs.id}"' in bob_dismissed and f'id="pair-{pair.id}"' not in bob_dismissed
    assert bob_dismissed.lstrip().startswith('<section id="results">')
    assert f'id="pair-{pair.id}"' in everything and f'id="pair-{bobs.id}"' in everything


def test_an_admin_scan_is_queued_and_finds_the_pairs(signed_in, pair):
    DuplicatePair.objects.all().delete()
    admin = signed_in("admin")

    response = admin.post(reverse("duplicate_scan"), {"uid": "alice", "threshold": "0.95"})

    assert response.status_code == 302 and response.url == "/duplicates/?uid=alice"  # the queue of that user
    assert DuplicatePair.objects.filter(uid="alice", status="open").count() == 1  # tasks run in-process here
    page = admin.get(response.url).content.decode()
    assert "Duplicate scan queued for alice" in page and 'value="alice"' in page
    bad = admin.post(reverse("duplicate_scan"), {"threshold": "1.5"})
    assert "threshold must be in (0, 1]" in admin.get(bad.url).content.decode()
    back = reverse("duplicate_list") + "?uid=alice&status=all"
    garbled = admin.post(reverse("duplicate_scan"), {"uid": "alice", "threshold": "high", "next": back})
    assert garbled.url == back  # nothing queued: back to the page the form was on, with the reason
    assert "The threshold must be a number, such as 0.95." in admin.get(garbled.url).content.decode()


def test_a_merge_that_does_not_say_which_memory_to_keep_changes_nothing(signed_in, pair):
    admin = signed_in("admin")

    for keep in ({}, {"keep": "left"}):
        body = admin.post(merge_url(pair), keep, **HTMX).content.decode()
        assert body.lstrip().startswith(f'<article class="card pair" id="pair-{pair.id}"')
        assert "Choose which memory to keep." in body and "Keep left, merge right" in body
    assert DuplicatePair.objects.get().status == "open"
    assert not Memory.objects.filter(status=Memory.Status.DELETED).exists()


def many_pairs(uid: str, count: int) -> list[DuplicatePair]:
    """`count` open pairs of rows made directly (no pipeline), most similar first."""
    rows = [
        Memory.objects.create(uid=uid, title=f"Note {i}", transcript=f"note {i}", status="indexed")
        for i in range(2 * count)
    ]
    return [
        DuplicatePair.objects.create(
            uid=uid, memory_a=rows[2 * i], memory_b=rows[2 * i + 1], similarity=0.99 - i / 1000
        )
        for i in range(count)
    ]


def test_the_queue_comes_in_pages_of_20_whose_links_keep_the_filters(signed_in):
    pairs = many_pairs("fay", 23)
    many_pairs("gus", 1)
    analyst = signed_in("analyst")

    first = analyst.get(reverse("duplicate_list"), {"uid": "fay", "status": "open"}).content.decode()
    second = analyst.get(reverse("duplicate_list"), {"uid": "fay", "status": "open", "page": "2"}, **HTMX)

    assert first.count('class="card pair"') == 20 and "23 pairs for fay, open." in first and "page 1 of 2" in first
    assert 'href="?uid=fay&amp;status=open&amp;page=2"' in first
    assert 'hx-get="?uid=fay&amp;status=open&amp;page=2" hx-target="#results"' in first
    assert [f'id="pair-{p.id}"' in second.content.decode() for p in pairs[20:]] == [True] * 3
    assert second.content.decode().count('class="card pair"') == 3
    assert 'href="?uid=fay&amp;status=open&amp;page=1"' in second.content.decode()
    beyond = analyst.get(reverse("duplicate_list"), {"uid": "fay", "page": "7"}).content.decode()
    assert "page 2 of 2" in beyond  # past the end: the last page


def test_every_answer_of_the_queue_varies_on_htmx_and_a_history_restore_gets_the_whole_page(signed_in, pair):
    """The back button after paging or filtering the queue: when htmx no longer has the page, it
    asks for it as a history restore, which must get the whole page, not the bare #results."""
    results = assert_whole_page_or_fragment(
        signed_in("analyst"), reverse("duplicate_list") + "?uid=alice&status=open", fragment='<section id="results">'
    )
    assert f'id="pair-{pair.id}"' in results


def test_a_merge_button_asks_to_confirm_in_the_card_and_changes_nothing_until_then(signed_in, pair):
    admin = signed_in("admin")
    url = reverse("duplicate_pair", args=[pair.id])
    back = reverse("duplicate_list") + "?uid=alice"

    card = admin.get(url, {"keep": pair.memory_a_id, "next": back}, **HTMX).content.decode()
    page = admin.get(url, {"keep": pair.memory_a_id}).content.decode()  # without JavaScript: a page
    cancelled = admin.get(url, {"next": back}, **HTMX).content.decode()
    analysts = signed_in("analyst").get(url, {"keep": pair.memory_a_id}, **HTMX).content.decode()

    assert card.lstrip().startswith(f'<article class="card pair" id="pair-{pair.id}"')
    assert f"Merge #{pair.memory_b_id} into #{pair.memory_a_id}?" in card and "Confirm merge" in card
    assert f'name="keep" value="{pair.memory_a_id}"' in card and f'value="{back}"' in card
    assert "<html" in page and "Confirm merge" in page
    assert "Confirm merge" not in cancelled and "Keep left, merge right" in cancelled
    assert "Confirm merge" not in analysts and "Keep left" not in analysts
    assert DuplicatePair.objects.get().status == "open"
    assert not Memory.objects.filter(status=Memory.Status.DELETED).exists()
    assert admin.get(reverse("duplicate_pair", args=[999999])).status_code == 404


def test_the_merged_memory_links_to_the_kept_one_and_an_unmerge_brings_it_back(signed_in, pair):
    admin = signed_in("admin")
    gone, kept = pair.memory_a_id, pair.memory_b_id
    admin.post(merge_url(pair), {"keep": kept})

    gone_page = admin.get(reverse("memory_detail", args=[gone])).content.decode()
    kept_page = admin.get(reverse("memory_detail", args=[kept])).content.decode()
    merged_card = admin.get(reverse("duplicate_pair", args=[pair.id]), **HTMX).content.decode()
    assert "Merged into" in gone_page and f'href="{reverse("memory_detail", args=[kept])}"' in gone_page
    assert "Merged into this memory" in kept_page and f'href="{reverse("memory_detail", args=[gone])}"' in kept_page
    assert "Unmerge" in merged_card
    assert "Unmerge" not in signed_in("analyst").get(reverse("duplicate_pair", args=[pair.id]), **HTMX).content.decode()

    body = admin.post(reverse("duplicate_unmerge", args=[pair.id]), **HTMX).content.decode()

    assert "Keep left, merge right" in body and "Unmerge" not in body  # the pair is open again
    assert Memory.objects.get(id=gone).status == Memory.Status.INDEXED  # processed again once the request commits
    assert "Merged into" not in admin.get(reverse("memory_detail", args=[gone])).content.decode()
    assert "is open, not merged" in admin.post(reverse("duplicate_unmerge", args=[pair.id]), **HTMX).content.decode()
