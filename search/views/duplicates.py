"""The duplicates page: the review queue of near-identical memory pairs; admins scan, merge, dismiss."""

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from omi_memory.actors import Actor
from omi_memory.dashboard import form_errors, render_page
from omi_memory.errors import ApplicationError
from omi_memory.roles import admin_view, dashboard_view, is_admin

from ..analysis import duplicates
from ..forms import DUPLICATE_STATUSES, DuplicateFilterForm, DuplicateMergeForm, DuplicateScanForm, ReturnForm

PAIRS_PER_PAGE = 20


@require_GET
@dashboard_view
def duplicate_list(request):
    """The review queue: pairs (filtered by uid and status, open by default), most similar first."""
    form = DuplicateFilterForm(request.GET)
    form.is_valid()
    uid, status = form.filters()
    context = {
        "uid": uid,
        "status": status,
        "statuses": DUPLICATE_STATUSES,
        "page": form.page_of(_pairs(uid, status), PAIRS_PER_PAGE),
        "back": request.get_full_path(),
        "default_threshold": settings.DUPLICATE_THRESHOLD,
    }
    return render_page(request, "search/duplicates.html", context, partial="results")


@require_POST
@admin_view
def duplicate_scan(request):
    form = DuplicateScanForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return redirect(_back(request, form))
    uid = form.cleaned_data["uid"]
    try:
        duplicates.duplicate_scan_enqueue(
            uid=uid or None, threshold=form.cleaned_data["threshold"], actor=Actor.from_request(request)
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Duplicate scan queued for {uid or 'every user'}.")
        if uid:  # show what the scan is about: that user's open pairs
            return redirect(f"{reverse('duplicate_list')}?{urlencode({'uid': uid})}")
    return redirect(_back(request, form))


@require_GET
@dashboard_view
def duplicate_pair(request, pair_id: int):
    """One pair's card; with `keep` (an admin's merge button), the card asks to confirm the merge.
    htmx gets the card alone, a plain request a page with it."""
    try:
        pair = duplicates.duplicate_pair_get(pair_id=pair_id)
    except ApplicationError:
        raise Http404("no such pair") from None
    form = DuplicateMergeForm(request.GET)
    keep = form.cleaned_data["keep"] if form.is_valid() else None
    context = {"pair": pair, "back": _back(request, form)}
    if keep in (pair.memory_a_id, pair.memory_b_id) and is_admin(request.user) and pair.status == "open":
        context["confirm_keep"] = keep
        context["confirm_merge"] = pair.memory_b_id if keep == pair.memory_a_id else pair.memory_a_id
    return render_page(request, "search/duplicate_pair.html", context, partial="pair")


@require_POST
@admin_view
def duplicate_merge(request, pair_id: int):
    form = DuplicateMergeForm(request.POST)
    return _duplicate_resolve(
        request,
        pair_id,
        form,
        lambda: duplicates.duplicate_pair_merge(
            pair_id=pair_id, keep_id=form.cleaned_data["keep"], actor=Actor.from_request(request)
        ),
        done="Merged: memory {kept} kept, the other deleted.",
    )


@require_POST
@admin_view
def duplicate_unmerge(request, pair_id: int):
    return _duplicate_resolve(
        request,
        pair_id,
        ReturnForm(request.POST),
        lambda: duplicates.duplicate_pair_unmerge(pair_id=pair_id, actor=Actor.from_request(request)),
        done="Unmerged: both memories are back and the pair is open again.",
    )


@require_POST
@admin_view
def duplicate_dismiss(request, pair_id: int):
    return _duplicate_resolve(
        request,
        pair_id,
        ReturnForm(request.POST),
        lambda: duplicates.duplicate_pair_dismiss(pair_id=pair_id, actor=Actor.from_request(request)),
        done="Dismissed: these two will not be raised again.",
    )


def _duplicate_resolve(request, pair_id: int, form: ReturnForm, action, *, done: str):
    """Run a merge or dismiss (when its form is valid); HTMX gets the pair's card in its new state
    (or with the error), a plain form POST a message and a redirect back to the queue."""
    error = ""
    if not form.is_valid():
        error = form_errors(form)
    else:
        try:
            pair = action()
        except ApplicationError as exc:
            error = exc.message
    back = _back(request, form)
    if request.htmx:
        try:
            pair = duplicates.duplicate_pair_get(pair_id=pair_id)
        except ApplicationError:
            raise Http404("no such pair") from None
        card = render_to_string("search/duplicates.html#pair", {"pair": pair, "error": error, "back": back}, request)
        # the queue's count, swapped in out of band: the pair may have left the filtered queue
        queue = DuplicateFilterForm(QueryDict(urlsplit(back).query))
        queue.is_valid()
        uid, status = queue.filters()
        count_line = render_to_string(
            "search/duplicates.html#count",
            {"count": _pairs(uid, status).count(), "uid": uid, "status": status, "oob": True},
            request,
        )
        return HttpResponse(card + count_line)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done.format(kept=pair.kept_id))
    return redirect(back)


def _pairs(uid: str, status: str):
    return duplicates.duplicate_pair_list(uid=uid, status="" if status == "all" else status)


def _back(request, form: ReturnForm) -> str:
    """The queue page the form was posted from, or the queue."""
    return form.next_url(request, default=reverse("duplicate_list"))
