"""The index view: what the vector store holds, per namespace and kind, and one memory's vectors
and their nearest neighbours, for the local store and for Pinecone (the fake, through the SDK)."""

import re

import pytest

from memories.models import MemoryVector
from memories.parts.vectorstores import get_vector_store
from tests.support.transcripts import BUDGET, DENTIST, GARDEN

pytestmark = pytest.mark.django_db


def rows(page: str, table_id: str) -> list[list[str]]:
    body = page[page.index(f'id="{table_id}"') :]
    body = body[body.index("<tbody>") : body.index("</tbody>")]
    return [
        [
            re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def kinds_in_database() -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in MemoryVector.objects.values_list("kind", flat=True):
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_only_admins_see_the_index_view(client, signed_in):
    assert client.get("/vectors/").status_code == 302
    assert signed_in("analyst").get("/vectors/").status_code == 403
    assert 'href="/vectors/"' not in signed_in("analyst", username="ann").get("/memories/").content.decode()
    page = signed_in("admin").get("/vectors/")
    assert page.status_code == 200 and 'href="/vectors/"' in page.content.decode()
    assert "No vectors yet." in page.content.decode() and "No memories yet." in page.content.decode()


def test_the_local_store_shows_its_model_dimension_vectors_by_kind_and_memories_per_user(remember, signed_in):
    remember("alice", DENTIST)
    remember("alice", GARDEN)
    remember("bob", BUDGET)

    page = signed_in("admin").get("/vectors/").content.decode()

    expected = kinds_in_database()
    assert "all-MiniLM-L6-v2" in page and "<dt>Dimension</dt><dd>384" in page
    assert rows(page, "kinds") == [[kind, str(n), str(n)] for kind, n in sorted(expected.items())]
    assert f'<span id="store-vectors">{sum(expected.values())}</span> in the store' in page
    alice_vectors = MemoryVector.objects.filter(memory__uid="alice").count()
    assert rows(page, "users")[:1] == [["alice", "2", "2", str(alice_vectors)]]
    assert rows(page, "users")[1][:3] == ["bob", "1", "1"]


def test_a_memory_lookup_lists_its_vectors_with_the_stores_metadata_and_their_neighbours(remember, signed_in):
    dentist = remember("alice", DENTIST)
    garden = remember("alice", GARDEN)
    remember("bob", DENTIST.replace("Alice", "Bob"))
    vectors = list(MemoryVector.objects.filter(memory=dentist).order_by("position"))
    get_vector_store().delete([vectors[-1].vector_id])  # the store lost one
    admin = signed_in("admin")

    page = admin.get("/vectors/", {"memory": dentist.id}).content.decode()

    listed = rows(page, "memory-vectors")
    assert [row[0] for row in listed] == [v.vector_id for v in vectors]
    assert f"memory_id={dentist.id}" in listed[0][3] and "uid=alice" in listed[0][3] and "kind=memory" in listed[0][3]
    assert listed[-1][3] == "missing"
    neighbours = rows(page, "neighbour-list")
    assert neighbours[0][:2] == ["1.000", dentist.vector_id]  # the vector itself comes first
    assert {f"#{garden.id}" in row[3] for row in neighbours} == {False, True}  # alice's other memory is there
    assert all("Bob" not in row[3] and "bob" not in row[1] for row in neighbours)  # never another user's

    other = admin.get("/vectors/", {"memory": dentist.id, "vector": vectors[1].vector_id}).content.decode()
    assert rows(other, "neighbour-list")[0][:2] == ["1.000", vectors[1].vector_id]


def test_an_unknown_memory_is_named_in_an_error(signed_in):
    page = signed_in("admin").get("/vectors/", {"memory": 99999}).content.decode()

    assert "There is no memory #99999." in page and 'id="memory-vectors"' not in page


def test_pinecone_counts_come_from_describe_index_stats(production_parts, remember, signed_in):
    _, pinecone = production_parts
    remember("alice", DENTIST)
    remember("bob", BUDGET)

    page = signed_in("admin").get("/vectors/").content.decode()

    held = len(pinecone.vectors("ns1"))
    assert any(r["path"] == "/describe_index_stats" for r in pinecone.requests)
    assert f'<span id="store-vectors">{held}</span> in the store' in page
    assert rows(page, "namespaces") == [["ns1 in use", str(held)]]
    assert "text-embedding-3-large" in page and "<dt>Dimension</dt><dd>64" in page
    expected = kinds_in_database()
    assert rows(page, "kinds") == [[kind, str(n), "–"] for kind, n in sorted(expected.items())]  # no count by kind


def test_a_store_that_does_not_answer_is_said_so(production_parts, signed_in):
    _, pinecone = production_parts
    pinecone.fail_always("/describe_index_stats", "503")

    page = signed_in("admin").get("/vectors/").content.decode()

    assert "The store did not answer: pinecone describe_index_stats" in page
