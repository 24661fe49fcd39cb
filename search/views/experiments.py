"""The experiments pages: experiments and their results per arm; admins define, start, pause, end."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from omi_memory.actors import Actor
from omi_memory.dashboard import PageForm, render_page
from omi_memory.errors import ApplicationError, NotFound
from omi_memory.roles import admin_view, dashboard_view

from ..experiment_results import experiment_results
from ..experiments import arm_label
from ..forms import ExperimentForm, ExperimentStateForm
from ..models import Experiment
from ..selectors import experiment_get, experiment_search_counts
from ..services import experiment_create, experiment_set_state

EXPERIMENTS_PER_PAGE = 25
STATE_CHANGES = {  # state: the buttons its experiment offers (the state each sets, its label)
    Experiment.State.DRAFT: [(Experiment.State.RUNNING, "Start"), (Experiment.State.ENDED, "End")],
    Experiment.State.RUNNING: [(Experiment.State.PAUSED, "Pause"), (Experiment.State.ENDED, "End")],
    Experiment.State.PAUSED: [(Experiment.State.RUNNING, "Resume"), (Experiment.State.ENDED, "End")],
    Experiment.State.ENDED: [],
}


@require_GET
@dashboard_view
def experiment_list(request):
    return _list_page(request, ExperimentForm())


def _list_page(request, form: ExperimentForm, *, status: int = 200):
    pager = PageForm(request.GET)
    pager.is_valid()
    page = pager.page_of(Experiment.objects.all(), EXPERIMENTS_PER_PAGE)
    counts = experiment_search_counts()
    for experiment in page:
        experiment.search_count = counts.get(experiment.id, 0)
        experiment.labels = {name: arm_label(experiment.arm(name)) for name in ("a", "b")}
    context = {"page": page, "form": form, "running": Experiment.objects.filter(state="running").first()}
    return render_page(request, "search/experiments.html", context, partial="experiments", status=status)


@require_POST
@admin_view
def experiment_new(request):
    form = ExperimentForm(request.POST)
    if form.is_valid():
        try:
            experiment = experiment_create(**form.create_kwargs(), actor=Actor.from_request(request), user=request.user)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Experiment {experiment.name!r} defined, in draft: start it to take searches.")
            return redirect("experiment_detail", experiment.id)
    return _list_page(request, form, status=400)


@require_GET
@dashboard_view
def experiment_detail(request, experiment_id: int):
    experiment = _experiment_or_404(experiment_id)
    results = experiment_results(experiment)
    context = {
        "experiment": experiment,
        "results": results,
        "changes": STATE_CHANGES[experiment.state],
        "interleave": experiment.mode == Experiment.Mode.INTERLEAVE,
    }
    return render_page(request, "search/experiment.html", context, partial="results")


@require_POST
@admin_view
def experiment_state(request, experiment_id: int):
    _experiment_or_404(experiment_id)
    form = ExperimentStateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose start, pause or end.")
    else:
        try:
            experiment = experiment_set_state(
                experiment_id=experiment_id, state=form.cleaned_data["state"], actor=Actor.from_request(request)
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Experiment {experiment.name!r} is {experiment.state}.")
    return redirect("experiment_detail", experiment_id)


def _experiment_or_404(experiment_id: int) -> Experiment:
    try:
        return experiment_get(experiment_id=experiment_id)
    except NotFound:
        raise Http404("no such experiment") from None
