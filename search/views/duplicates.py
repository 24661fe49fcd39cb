"""The duplicates page: the review queue of near-identical memory pairs; admins scan, merge, dismiss."""

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from omi_memory.errors import ApplicationError
from omi_memory.roles import admin_view, dashboard_view

from ..analysis import duplicates

DUPLICATE_STATUSES = [
    ("open", "Open"),
    ("merged", "Merged"),
    ("dismissed", "Dismissed"),
    ("confirmed", "Confirmed"),
    ("all", "All"),
]


@require_GET
@dashboard_view
def duplicate_list(request):
    """The review queue: pairs (filtered by uid and status, open by default), most similar first."""
    uid, status = _pair_filters(request.GET)
    page = Paginator(_pairs(uid, status), 20).get_page(request.GET.get("page"))
    context = {
        "uid": uid,
        "status": status,
        "statuses": DUPLICATE_STATUSES,
        "page": page,
        "filters": urlencode({"uid": uid, "status": status}),
        "back": request.get_full_path(),
        "default_threshold": settings.DUPLICATE_THRESHOLD,
    }
    return render(request, "search/duplicates.html#results" if request.htmx else "search/duplicates.html", context)


@require_POST
@admin_view
def duplicate_scan(request):
    uid = request.POST.get("uid", "").strip()
    raw = request.POST.get("threshold", "").strip()
    try:
        threshold = float(raw) if raw else None
        duplicates.duplicate_scan_enqueue(uid=uid or None, threshold=threshold)
    except ValueError:
        messages.error(request, f"The threshold {raw!r} is not a number.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Duplicate scan queued for {uid or 'every user'}.")
        if uid:  # show what the scan is about: that user's open pairs
            return redirect(f"{reverse('duplicate_list')}?{urlencode({'uid': uid})}")
    return redirect(_duplicates_back(request))


@require_POST
@admin_view
def duplicate_merge(request, pair_id: int):
    keep = request.POST.get("keep", "")
    return _duplicate_resolve(
        request,
        pair_id,
        lambda: duplicates.duplicate_pair_merge(
            pair_id=pair_id, keep_id=int(keep) if keep.isdigit() else 0, user=request.user
        ),
        done="Merged: memory {kept} kept, the other deleted.",
    )


@require_POST
@admin_view
def duplicate_dismiss(request, pair_id: int):
    return _duplicate_resolve(
        request,
        pair_id,
        lambda: duplicates.duplicate_pair_dismiss(pair_id=pair_id, user=request.user),
        done="Dismissed: these two will not be raised again.",
    )


def _duplicate_resolve(request, pair_id: int, action, *, done: str):
    """Run a merge or dismiss; HTMX gets the pair's card in its new state (or with the error),
    a plain form POST a message and a redirect back to the queue."""
    error = ""
    try:
        pair = action()
    except ApplicationError as exc:
        error = exc.message
    if request.htmx:
        try:
            pair = duplicates.duplicate_pair_get(pair_id=pair_id)
        except ApplicationError:
            raise Http404("no such pair") from None
        back = _duplicates_back(request)
        card = render_to_string("search/duplicates.html#pair", {"pair": pair, "error": error, "back": back}, request)
        # the queue's count, swapped in out of band: the pair may have left the filtered queue
        uid, status = _pair_filters(QueryDict(urlsplit(back).query))
        count = _pairs(uid, status).count()
        count_line = render_to_string(
            "search/duplicates.html#count", {"count": count, "uid": uid, "status": status, "oob": True}, request
        )
        return HttpResponse(card + count_line)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done.format(kept=pair.kept_id))
    return redirect(_duplicates_back(request))


def _pair_filters(query: QueryDict) -> tuple[str, str]:
    """The queue's filters from a query string: (uid, status), open pairs by default."""
    status = query.get("status", "open")
    return query.get("uid", "").strip(), status if status in dict(DUPLICATE_STATUSES) else "open"


def _pairs(uid: str, status: str):
    return duplicates.duplicate_pair_list(uid=uid, status="" if status == "all" else status)


def _duplicates_back(request) -> str:
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return reverse("duplicate_list")
