"""API throttles: per key and kind of endpoint, per address without a valid key; 429 in the one
error shape with Retry-After; counts shared by every process through Redis."""

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from memories.services import api_key_create
from tests.support.actors import COMMAND
from tests.support.processes import free_port, redis_url_or_skip, service_env, web_server
from tests.support.transcripts import BUDGET, DENTIST

pytestmark = pytest.mark.django_db


def throttled(response) -> int:
    """Assert a 429 in the one error shape with Retry-After; returns the seconds."""
    assert response.status_code == 429, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == "throttled"
    seconds = int(response["Retry-After"])
    assert body["error"]["details"] == {"retry_after": seconds}
    assert f"try again in {seconds} s" in body["error"]["message"]
    return seconds


def search(api, query: str = "dentist"):
    return api.post("/search", {"uid": "alice", "query": query})


def test_a_key_past_its_search_rate_gets_429_with_retry_after_and_other_keys_do_not(api, api_for, settings):
    settings.THROTTLE_SEARCH = "3/min"
    other = api_for("alice")

    assert [search(api).status_code for _ in range(3)] == [200, 200, 200]
    seconds = throttled(search(api))
    assert 1 <= seconds <= 60
    assert throttled(search(api)) <= seconds  # still shut, and no later than said
    assert search(other).status_code == 200  # a key of its own, a count of its own


def test_writes_reads_and_searches_are_counted_apart(api, settings):
    settings.THROTTLE_WRITES = "2/min"
    settings.THROTTLE_READS = "3/min"

    first = api.post("/memories", {"uid": "alice", "transcript": DENTIST})
    assert first.status_code == 201
    assert api.delete(f"/memories/{first.json()['id']}").status_code == 204  # a write too
    throttled(api.post("/memories", {"uid": "alice", "transcript": BUDGET}))
    throttled(api.post("/search/feedback", {"search_id": 1, "memory_id": 1, "relevant": True}))

    assert [api.get("/memories").status_code for _ in range(3)] == [200] * 3
    throttled(api.get("/memories"))
    throttled(api.get(f"/memories/{first.json()['id']}"))
    assert search(api).status_code == 200  # searches have a rate of their own


def test_requests_without_a_valid_key_are_throttled_per_address_and_a_valid_key_still_works(api, settings):
    from django.test import Client

    settings.THROTTLE_ANON = "3/min"
    stranger = Client(headers={"X-API-Key": "omk_not-a-key"}, REMOTE_ADDR="203.0.113.7")
    nobody = Client(REMOTE_ADDR="203.0.113.7")

    assert [stranger.get("/api/v1/memories").status_code for _ in range(2)] == [401, 401]
    assert nobody.get("/api/v1/memories").status_code == 401  # no key at all counts too
    throttled(stranger.get("/api/v1/memories"))
    throttled(nobody.post("/api/v1/search", "{}", content_type="application/json"))
    assert Client(REMOTE_ADDR="198.51.100.2").get("/api/v1/memories").status_code == 401  # another address
    # A caller with a valid key is not held back by guesses made from its address.
    key = api_key_create(name="same address", actor=COMMAND)[1]
    assert Client(headers={"X-API-Key": key}, REMOTE_ADDR="203.0.113.7").get("/api/v1/memories").status_code == 200


def test_x_forwarded_for_counts_only_as_far_as_trusted_proxies_wrote_it(db, settings):
    from django.test import Client

    settings.THROTTLE_ANON = "2/min"

    def guess(forwarded_for: str):
        return Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for).get("/api/v1/memories")

    # No trusted proxy: a client writing its own X-Forwarded-For is still one address.
    settings.TRUSTED_PROXIES = 0
    assert [guess(f"192.0.2.{n}").status_code for n in (1, 2)] == [401, 401]
    throttled(guess("192.0.2.3"))

    # One proxy (10.0.0.1) that appends what it saw: that address counts, not what a client wrote before it.
    settings.TRUSTED_PROXIES = 1
    assert [guess(f"6.6.6.{n}, 198.51.100.9").status_code for n in (1, 2)] == [401, 401]
    throttled(guess("6.6.6.3, 198.51.100.9"))
    assert guess("198.51.100.10").status_code == 401  # another client behind the same proxy

    # More proxies trusted than there are: the client's own entry counts only if it is an address;
    # nonsense there counts for the connection's address (10.0.0.1, over its rate since the start).
    settings.TRUSTED_PROXIES = 3
    throttled(guess("nonsense, 198.51.100.9"))
    assert guess("192.0.2.44, 198.51.100.9").status_code == 401  # an address: believed, as configured


def test_a_window_opens_again_when_its_period_ends(api, settings):
    settings.THROTTLE_SEARCH = "2/s"

    assert [search(api).status_code for _ in range(2)] == [200, 200]
    assert throttled(search(api)) == 1
    time.sleep(1.1)
    assert search(api).status_code == 200


def test_a_throttle_set_to_off_counts_nothing(api, settings):
    settings.THROTTLE_READS = "1/min"
    assert api.get("/memories").status_code == 200
    throttled(api.get("/memories"))
    settings.THROTTLE_READS = None  # THROTTLE_READS=off
    assert [api.get("/memories").status_code for _ in range(3)] == [200] * 3


def test_with_the_cache_down_requests_go_through_and_the_cache_is_left_alone_for_a_while(api, settings, monkeypatch):
    from omi_memory.throttles import RateThrottle

    settings.CACHES = {  # a Redis that is not there
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    count, tried = RateThrottle._count, []
    monkeypatch.setattr(RateThrottle, "_count", staticmethod(lambda *args: tried.append(args) or count(*args)))

    answers = [api.get("/memories") for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 5
    assert len(tried) == 1  # after its failure, the cache is not tried by each request


def test_the_openapi_schema_documents_429_with_retry_after_on_every_operation(client):
    schema = client.get("/api/v1/openapi.json").json()

    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert len(operations) >= 8
    for operation in operations:
        answer = operation["responses"]["429"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
        assert answer["headers"]["Retry-After"]["schema"]["type"] == "integer"


# Several processes and hosts: two gunicorn servers (two workers each) counting in one Redis.


def _get(base: str, key: str) -> int:
    request = urllib.request.Request(f"{base}/api/v1/memories", headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        assert error.code != 429 or error.headers["Retry-After"].isdigit()
        return error.code


@pytest.mark.django_db(transaction=True)
def test_every_worker_process_and_host_counts_in_the_same_redis_and_lets_exactly_the_rate_through(tmp_path):
    env = {**service_env(redis_url_or_skip()), "THROTTLE_READS": "10/min"}
    key = api_key_create(name="shared count", actor=COMMAND)[1]

    with (
        web_server(env, tmp_path / "web-a.log", workers=2) as host_a,
        web_server(env, tmp_path / "web-b.log", workers=2) as host_b,
    ):
        # One after the other, alternating hosts: the count goes on from one to the other.
        assert [_get(host, key) for host in (host_a, host_b) * 3] == [200] * 6
        # 30 at once over both hosts: exactly the 4 left get through (no two processes take the last one).
        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(lambda n: _get((host_a, host_b)[n % 2], key), range(30)))
        assert sorted(statuses) == [200] * 4 + [429] * 26, json.dumps(statuses)
        assert _get(host_a, key) == _get(host_b, key) == 429
