"""The index view with index versions, on a phone and to axe-core: each version's row and state."""

from playwright.sync_api import expect

from memories.index_versions import index_version_build, index_version_start
from memories.models import VectorIndex
from tests.support.actors import COMMAND
from tests.support.transcripts import BUDGET, DENTIST

from .test_every_page import _check, phone  # noqa: F401 - the fixture, used by name


def test_the_index_view_shows_each_version_and_its_build_on_a_phone_and_to_axe(phone, sign_in, remember):  # noqa: F811
    remember("alice", DENTIST)
    remember("alice", BUDGET)
    ready, _ = index_version_start(embedder="local", dimensions=None, vector_store="local", host="", actor=COMMAND)
    list(index_version_build(version=ready))  # the same model: the stored vectors, nothing embedded
    building, _ = index_version_start(embedder="local", dimensions=None, vector_store="local", host="", actor=COMMAND)
    VectorIndex.objects.filter(id=building.id).update(memories_total=2, memories_done=1)
    live = VectorIndex.objects.get(state="active")
    sign_in("admin")

    problems: list[str] = []
    _check(phone, "/vectors/", problems)

    assert not problems, "\n".join(problems)
    expect(phone.locator(f"#version-{live.name}")).to_contain_text("active")
    expect(phone.locator(f"#version-{ready.name}")).to_contain_text("ready")
    expect(phone.locator(f"#version-{building.name}")).to_contain_text("1 of 2 memories")
    expect(phone.get_by_role("progressbar", name=f"build of {building.name}")).to_be_visible()
