"""What every answer says about itself: a Content Security Policy without inline code, templates
that need none, and `Cache-Control: private, no-store` on whatever carries memories."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from omi_memory.charts import PALETTE
from tests.support.transcripts import DENTIST

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def test_pages_and_the_api_docs_have_a_policy_of_this_origin_only_without_inline_code_or_eval(signed_in, client):
    for response in (signed_in("admin").get("/memories/"), client.get("/accounts/login/"), client.get("/api/v1/docs")):
        policy = directives(response)
        assert policy["default-src"] == ["'self'"] and policy["script-src"] == ["'self'"]
        assert policy["style-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "unsafe" not in response["Content-Security-Policy"]


def test_the_api_docs_load_swagger_ui_from_this_server(client):
    page = client.get("/api/v1/docs").content.decode()

    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(s.endswith("swagger-ui-bundle.js") for s in sources)
    assert all(s.startswith("/") for s in sources), sources  # nothing from a CDN


# The rule templates follow (templates/base.html); the browser tests check the pages themselves.
INLINE = {
    "a <script> without src": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "a <style> block": re.compile(r"<style\b", re.I),
    "a style attribute": re.compile(r"\sstyle=", re.I),
    "an on... handler": re.compile(r"\son[a-z]+=", re.I),
    "hx-on": re.compile(r"\s(?:data-)?hx-on", re.I),
    "an htmx trigger filter (eval)": re.compile(r'hx-trigger="[^"]*\w\[', re.I),
    "js: values (eval)": re.compile(r"hx-(?:vals|vars)=[\"']\s*js:", re.I),
}


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_needs_inline_code_the_policy_would_block(template):
    text = template.read_text()
    text = re.sub(r"{% comment %}.*?{% endcomment %}", "", text, flags=re.S)  # base.html explains the rule

    found = [what for what, pattern in INLINE.items() if pattern.search(text)]

    assert not found, f"{template.name} has {', '.join(found)}: see the rule in templates/base.html"


def test_every_chart_colour_has_its_class_in_the_stylesheet():
    css = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
    for index, colour in enumerate(PALETTE):
        assert f".palette-{index} {{ --colour: {colour}; }}" in css


def private(response) -> bool:
    return {"private", "no-store"} <= {part.strip() for part in response.get("Cache-Control", "").split(",")}


def test_pages_and_answers_with_memories_are_private_and_not_stored(signed_in, api, remember):
    memory = remember(uid="alice", transcript=DENTIST)
    analyst = signed_in("analyst")

    for path in ("/memories/", f"/memories/{memory.id}/", "/search/?uid=alice&query=crown", "/pipeline/"):
        response = analyst.get(path)
        assert response.status_code == 200 and private(response), path
    assert "crown" in analyst.get("/search/?uid=alice&query=crown").content.decode()

    for response in (
        api.get(f"/memories/{memory.id}"),
        api.get("/memories", uid="alice"),
        api.post("/search", {"uid": "alice", "query": "crown"}),
        api.get("/memories/999999"),
    ):
        assert private(response), response.content[:200]


def test_the_api_docs_and_schema_may_be_cached(client):
    for path in ("/api/v1/docs", "/api/v1/openapi.json"):
        assert "no-store" not in client.get(path).get("Cache-Control", ""), path
