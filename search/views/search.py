"""The search page: one user's memories searched as you type, by any strategy (or the running
experiment's arm, with the strategy on auto); results judged in place."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from memories.selectors import memory_transcript_starts, memory_uids
from omi_memory.dashboard import form_errors, render_page
from omi_memory.errors import ApplicationError, BackendError, NotFound
from omi_memory.roles import dashboard_view

from ..forms import JudgeForm, SearchForm
from ..selectors import search_log_get
from ..services import SNIPPET_CHARS, feedback_record, search_memories
from ..strategies import SCORE_SCALES

INTERLEAVED_SCALE = "each result keeps the score its experiment arm gave it, on that arm's scale"


@require_GET
@dashboard_view
def search_page(request):
    uids = memory_uids()
    form = SearchForm(request.GET, uids=uids) if uids else None  # none: an empty install, nothing to search
    context = {"form": form, "uids": uids, "result": None, "error": "", "next_url": request.get_full_path()}
    status = 200
    if form is None:
        pass
    elif not form.is_valid():
        status = 400
    elif form.cleaned_data["all_queries"]:
        try:
            result = search_memories(**form.search_kwargs(), user=request.user)
        except ApplicationError as exc:  # e.g. the index was built by another embedding model
            context["error"], status = exc.message, 400
        except BackendError as exc:
            context["error"] = f"The search could not reach its backend ({exc}). Try again in a moment."
        else:
            _show_transcript_starts(result.hits)
            context.update(
                result=result,
                weak=sum(hit.weak for hit in result.hits),
                score_scale=SCORE_SCALES.get((result.strategy, form.cleaned_data["fusion"]), INTERLEAVED_SCALE),
            )
    return render_page(request, "search/search.html", context, partial="results", status=status)


def _show_transcript_starts(hits) -> None:
    """A hit found by the memory's own vector (not one window of its transcript) shows the start
    of its transcript, rather than the overview the page already shows."""
    whole = [hit.memory.id for hit in hits if hit.vector_id in ("", hit.memory.vector_id)]
    starts = memory_transcript_starts(memory_ids=whole, chars=SNIPPET_CHARS) if whole else {}
    for hit in hits:
        hit.snippet = starts.get(hit.memory.id, hit.snippet)


@require_POST
@dashboard_view
def search_judge(request):
    form = JudgeForm(request.POST)
    if not form.is_valid():
        problems = form_errors(form)
        return HttpResponse(f"Cannot record this judgment: {problems}", status=400, content_type="text/plain")
    data = form.cleaned_data
    next_url = form.next_url(request, default=reverse("search"))
    context = {"search_id": data["search_id"], "memory_id": data["memory_id"], "next_url": next_url}
    try:
        search = search_log_get(search_id=data["search_id"])
        judgment = feedback_record(
            search=search, memory_id=data["memory_id"], relevant=data["relevant"], note=data["note"], user=request.user
        )
    except ApplicationError as exc:  # an unknown search, or a memory that is not one of its results
        status = 404 if isinstance(exc, NotFound) else 400
        if request.htmx:
            return render(request, "search/search.html#judge", {**context, "error": exc.message}, status=status)
        return HttpResponse(exc.message, status=status, content_type="text/plain")
    if request.htmx:
        return render(request, "search/search.html#judge", {**context, "judgment": judgment})
    verdict = "relevant" if judgment.relevant else "not relevant"
    messages.success(request, f"Memory #{judgment.memory_id} judged {verdict} for search #{search.id}.")
    return redirect(next_url)
