"""Requests as htmx sends them, and what every page that answers both ways must do."""

HTMX = {"HX-Request": "true"}
# htmx lost its snapshot of a page the back (or forward) button returns to, and asks the server.
HISTORY_RESTORE = {**HTMX, "HX-History-Restore-Request": "true"}


def assert_whole_page_or_fragment(client, url: str, *, fragment: str) -> str:
    """A plain request and a history restore get the whole page, an htmx request only the
    fragment (which starts with `fragment`); all three say that they vary on htmx's headers, so
    that no cache, the browser's included, serves the fragment for the page. Returns the fragment."""
    plain, partial, restore = (client.get(url, headers=h) for h in ({}, HTMX, HISTORY_RESTORE))
    for response in (plain, partial, restore):
        assert response.status_code == 200, url
        vary = {header.strip().lower() for header in response.get("Vary", "").split(",")}
        assert {"hx-request", "hx-history-restore-request"} <= vary, (url, response.get("Vary"))
    for whole in (plain, restore):
        assert "<html" in whole.content.decode() and 'class="topbar"' in whole.content.decode(), url
    body = partial.content.decode()
    assert body.lstrip().startswith(fragment) and "<html" not in body, (url, body[:200])
    return body
