"""Every page on a phone and to axe-core: at 390x844 no page is wider than the screen and every nav
link can be reached; axe-core (tests/e2e/package.json, `make test` installs it) finds no serious or
critical violation, with demo-like data and on an empty install. The pages are the nav's links (a
page added to the nav is checked too), a memory, a cluster run, a search with results, an
experiment with its results, the 404 and the sign-in page. Also: the skip link, and keyboard focus
kept through an htmx swap."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from memories.models import Memory
from search.analysis.clusters import cluster_run_create
from search.models import EvalRun, Experiment, ParameterProfile
from search.selectors import search_log_get
from search.services import feedback_record, search_memories
from search.strategies import resolve_params
from tests.support.actors import COMMAND
from tests.support.transactions import committed
from tests.support.transcripts import BUDGET, DENTIST, GARDEN

from .conftest import _missing

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
# axe.run in the page; the serious and critical violations, each with up to three of its elements.
RUN_AXE = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
  .filter((v) => ["serious", "critical"].includes(v.impact))
  .map((v) => `${v.id} (${v.impact}): ${v.help}: ` + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "))"""


@pytest.fixture
def phone(page):
    """The page at a phone's size, with axe-core loaded in every document it opens (an init script,
    which the Content Security Policy does not block, as it would an inline script tag)."""
    if not AXE.exists():
        _missing(f"no axe-core at {AXE} (`make test` installs it: `npm ci --prefix tests/e2e`)")
    page.set_viewport_size(PHONE)
    page.context.add_init_script(path=AXE)
    return page


def _check(page, path: str, problems: list[str]) -> None:
    page.goto(path)
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        problems.append(f"{path}: {width}px wide at {PHONE['width']}px")
    problems.extend(f"{path}: {violation}" for violation in page.evaluate(RUN_AXE))
    page.shot(re.sub(r"\W+", "_", path).strip("_") or "root")


def _walk(page, extra_pages: list[str]) -> list[str]:
    """Check every nav link's page (each link seen and within the screen), then `extra_pages`,
    the 404 and, signed out, the sign-in page; the problems found."""
    problems: list[str] = []
    page.goto("/memories/")
    links = page.locator("header nav a")
    expect(links.first).to_be_visible()
    for link in links.all():
        expect(link).to_be_visible()
        box = link.bounding_box()
        if box["x"] < 0 or box["x"] + box["width"] > PHONE["width"]:
            problems.append(f"nav link {link.inner_text()!r} is off the screen at x={box['x']:.0f}")
    for path in [link.get_attribute("href") for link in links.all()] + extra_pages:
        _check(page, path, problems)
    _check(page, "/no-such-page/", problems)
    page.goto("/memories/")
    page.get_by_role("button", name="Sign out").click()
    _check(page, "/accounts/login/", problems)
    return problems


def test_every_page_fits_a_phone_and_axe_finds_nothing_serious_with_demo_like_data(phone, sign_in, remember):
    dentist = remember("alice", DENTIST)
    remember("alice", DENTIST.replace("next Tuesday", "on Tuesday"))  # a duplicate pair
    remember("alice", BUDGET)
    remember("alice", GARDEN)
    Memory.objects.create(uid="ben", transcript="hello", status="failed", failure_reason="the extractor timed out")
    with committed():
        run = cluster_run_create(uid="alice", k=2, actor=COMMAND)
    searched = search_memories(uid="alice", queries=["cracked crown"], k=3)
    shown = searched.hits[0].memory.id  # the dentist, or its duplicate with the dentist folded under it
    assert shown == dentist.id or dentist.id in searched.hits[0].also
    feedback_record(search=search_log_get(search_id=searched.search_id), memory_id=shown, relevant=True)
    experiment = Experiment.objects.create(
        name="semantic against hybrid",
        mode="interleave",
        state="running",
        traffic_share=1.0,
        arm_a={"strategy": "semantic", "params": {}, "profile": "", "index_version": ""},
        arm_b={"strategy": "hybrid", "params": {"fusion": "rrf"}, "profile": "", "index_version": ""},
    )
    interleaved = search_memories(uid="alice", queries=["cracked crown"], k=3, strategy=None)
    feedback_record(search=search_log_get(search_id=interleaved.search_id), memory_id=shown, relevant=True)
    metrics = {"queries": 760, "recall@1": 0.74, "recall@5": 0.94, "recall@10": 0.98, "mrr": 0.83, "ndcg@10": 0.84}
    for profile in ("", "hybrid-tuned-20261201-190000"):  # a trend of two runs, the second with a profile
        EvalRun.objects.create(
            dataset="../shared/data/locomo",
            split="dev",
            strategy="hybrid",
            metrics=metrics,
            profile=profile,
            embedding_model="all-MiniLM-L6-v2",
            seconds=60,
        )
    held_out = {"ndcg@10": 0.84, "recall@5": 0.94}
    ParameterProfile.objects.create(
        name="hybrid-tuned-20261201-190000",
        strategy="hybrid",
        params=resolve_params("hybrid"),
        source={
            "kind": "tune",
            "folds": 5,
            "judged_queries": 31,
            "judgments": 80,
            "labelled_queries": 760,
            "before": held_out,
            "after": held_out,
        },
    )
    sign_in("admin")

    problems = _walk(
        phone,
        [
            f"/memories/{dentist.id}/",
            f"/clusters/{run.id}/",
            "/search/?uid=alice&query=cracked+crown",
            f"/experiments/{experiment.id}/",
        ],
    )
    assert not problems, "\n".join(problems)


def test_every_page_of_an_empty_install_fits_a_phone_and_axe_finds_nothing_serious(phone, sign_in):
    sign_in("admin")
    problems = _walk(phone, [])
    assert not problems, "\n".join(problems)


def test_the_skip_link_is_the_first_tab_stop_and_moves_focus_to_the_content(page, sign_in):
    sign_in("analyst")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.shot("skip-link")
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    page.keyboard.press("Tab")  # the next stop is in the page, not the nav
    assert page.evaluate("document.activeElement.closest('main') !== null")


def test_judging_a_result_by_keyboard_keeps_focus_on_the_button(page, sign_in, remember):
    dentist = remember("alice", DENTIST)
    remember("alice", GARDEN)
    sign_in("analyst")
    page.goto("/search/?uid=alice&query=cracked+crown")
    result = page.locator(f"#result-{dentist.id}")
    relevant = result.get_by_role("button", name="👍 Relevant")
    relevant.focus()
    page.keyboard.press("Enter")
    expect(result.locator(".badge.relevant")).to_have_text("judged relevant")
    expect(relevant).to_be_focused()
    page.keyboard.press("Tab")
    expect(result.get_by_role("button", name="👎 Not relevant")).to_be_focused()
    page.keyboard.press("Enter")
    expect(result.locator(".badge.not-relevant")).to_have_text("judged not relevant")
    expect(result.get_by_role("button", name="👎 Not relevant")).to_be_focused()


def test_on_a_phone_each_memory_of_the_list_is_a_card_with_its_fields_labelled(page, sign_in):
    memory = Memory.objects.create(uid="alice", title="Cracked crown", transcript="crown", status="indexed")
    page.set_viewport_size(PHONE)
    sign_in("analyst")
    row = page.locator(f"tr#memory-{memory.id}")
    expect(page.locator("#results thead")).not_to_be_in_viewport()
    user = row.locator("td", has_text="alice")
    label = user.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label == '"User"', label
    cells = row.locator("td").all()
    tops = [cell.bounding_box()["y"] for cell in cells]
    assert tops == sorted(tops) and len(set(tops)) == len(tops), "the cells are not stacked"
    page.shot("card")
