"""Every dashboard view says which method it answers: the other gets 405, before sign-in is asked."""

import pytest
from django.urls import URLPattern, reverse

import memories.urls
import search.urls

pytestmark = pytest.mark.django_db(transaction=True)


def pages(urlconf) -> list[str]:
    return [
        reverse(pattern.name, kwargs={name: 1 for name in pattern.pattern.converters})
        for pattern in urlconf.urlpatterns
        if isinstance(pattern, URLPattern)
    ]


@pytest.mark.parametrize("url", pages(memories.urls) + pages(search.urls))
def test_a_page_answers_one_method_and_refuses_the_other(client, url):
    answers = {method: getattr(client, method)(url).status_code for method in ("get", "post", "put", "delete")}

    assert sorted(answers.values()) == [302, 405, 405, 405], answers  # 302: to sign in, for the one it answers
    assert answers["get"] == 302 or answers["post"] == 302
