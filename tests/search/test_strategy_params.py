"""A strategy's numeric parameters: overridden for one search, checked against their bounds, logged."""

from datetime import UTC, datetime

import jsonschema
import pytest

from search.models import DuplicatePair, ParameterProfile, SearchLog
from search.strategies import PARAMS, resolve_params, strategy_defaults
from tests.support.transcripts import BUDGET, DENTIST

pytestmark = pytest.mark.django_db


def search(api, **body):
    return api.post("/search", {"uid": "alice", "query": "the crown in March", **body})


def test_hybrid_weights_given_for_one_search_change_its_ranking_and_are_logged(api, remember):
    dentist = remember("alice", DENTIST, created_at=datetime(2026, 5, 10, 12, tzinfo=UTC))
    budget = remember("alice", BUDGET, created_at=datetime(2026, 3, 10, 12, tzinfo=UTC))
    DuplicatePair.objects.all().delete()
    month_only = {"lexical_weight": 0, "exchanges_weight": 0, "snippets_weight": 0, "windows_weight": 0}

    default = search(api, k=2).json()
    by_month = search(api, k=2, params={**month_only, "month_weight": 1}).json()

    assert [hit["memory"]["id"] for hit in default["results"]] == [dentist.id, budget.id]
    assert [hit["memory"]["id"] for hit in by_month["results"]] == [budget.id, dentist.id]
    assert default["params"] == strategy_defaults("hybrid")
    assert by_month["params"] == {**strategy_defaults("hybrid"), **month_only, "month_weight": 1}
    logged = SearchLog.objects.get(id=by_month["search_id"])
    assert logged.params["strategy_params"] == by_month["params"]
    assert SearchLog.objects.get(id=default["search_id"]).params["strategy_params"]["month_weight"] == 0.1


@pytest.mark.parametrize(
    "strategy, params, field, words",
    [
        ("hybrid", {"bm25_weight": 0.5}, "params.bm25_weight", "has no parameter 'bm25_weight'"),
        ("semantic", {"pool": 10}, "params.pool", "its parameters: none"),
        ("hybrid", {"lexical_weight": 1.5}, "params.lexical_weight", "between 0 and 1 (got 1.5)"),
        ("hybrid", {"snippets_per_memory": 2.5}, "params.snippets_per_memory", "whole number"),
        ("time_weighted", {"pool": 0}, "params.pool", "between 1 and 1000"),
        (
            "hybrid",
            {f"{s}_weight": 0 for s in ("lexical", "exchanges", "snippets", "windows", "month")},
            "params",
            "at least one signal",
        ),
    ],
)
def test_a_parameter_the_strategy_lacks_or_out_of_its_bounds_is_a_422_naming_it(
    api, remember, strategy, params, field, words
):
    remember("alice", DENTIST)

    response = search(api, strategy=strategy, params=params)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error" and words in error["message"]
    assert error["details"] == {"field": field}
    assert not SearchLog.objects.exists()
    body = {"uid": "alice", "query": "crown", "strategy": strategy, "params": params}
    assert not search_schema(api).is_valid(body)  # the OpenAPI document says so too: a fuzzer sends it as invalid


def search_schema(api) -> jsonschema.protocols.Validator:
    document = api.get("/openapi.json").json()
    return jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/SearchIn", "components": document["components"]}
    )


def test_the_openapi_document_accepts_each_strategys_parameters_in_their_bounds(api):
    schema = search_schema(api)
    for strategy, params in PARAMS.items():
        body = {"uid": "alice", "query": "crown", "strategy": strategy, "params": {p.name: p.high for p in params}}
        assert schema.is_valid(body), body
    assert schema.is_valid({"uid": "alice", "query": "crown", "params": {"month_weight": 1, "rrf_k": 60}})  # hybrid
    assert schema.is_valid({"uid": "alice", "query": "crown", "params": None})
    assert not schema.is_valid({"uid": "alice", "query": "crown", "params": {"pool": 10}})  # hybrid has no pool


def test_a_null_strategy_is_hybrid_for_the_openapi_document_as_for_the_api(api):
    """A fuzzer found a body the document allowed and the API refused: strategy null (hybrid) with
    a parameter hybrid lacks."""
    schema = search_schema(api)
    unknown = {"uid": "alice", "query": "crown", "strategy": None, "params": {"\u0004": 1.0}}
    known = {**unknown, "params": {"rrf_k": 10}}

    assert not schema.is_valid(unknown) and search(api, **unknown).status_code == 422
    assert schema.is_valid(known) and search(api, **known).status_code == 200


def test_a_parameter_that_is_not_a_json_number_is_refused(api):
    response = search(api, params={"lexical_weight": "0.5"})

    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


def test_the_openapi_document_states_each_parameter_with_its_bounds(api):
    description = api.get("/openapi.json").json()["components"]["schemas"]["SearchIn"]["properties"]["params"]
    for strategy, params in PARAMS.items():
        for param in params:
            assert f"{param.name} {param.low:g}..{param.high:g}" in description["description"], (strategy, param)


def test_a_profile_saved_here_is_used_by_the_next_search_and_one_saved_elsewhere_within_the_ttl(
    api, remember, settings
):
    remember("alice", DENTIST)

    def profile_used() -> str | None:
        return SearchLog.objects.get(id=search(api).json()["search_id"]).params["profile"]

    assert profile_used() is None
    ParameterProfile.objects.create(name="saved", strategy="hybrid", params=resolve_params("hybrid"), active=True)
    assert profile_used() == "saved"  # saved in this process (the admin site, a shell): at once
    settings.INDEX_VERSION_TTL = 0
    ParameterProfile.objects.filter(name="saved").update(active=False)  # as another process would: no signal here
    assert profile_used() is None
