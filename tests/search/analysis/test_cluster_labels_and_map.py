"""A cluster's label and the map, on given texts and vectors (no database)."""

import numpy as np

from search.analysis.clusters import cluster_terms, project_2d


def test_a_label_names_what_sets_its_cluster_apart_never_talk_or_numbers():
    texts = {
        1: "Yeah, so we still need two new tires, you know, two tires.",
        2: "Okay, the tires again: worn tires, two of them worn.",
        3: "Um, the dentist said two more visits for the crown, maybe three, actually.",
        4: "The dentist called about the crown again.",
    }

    labels = cluster_terms([[1, 2], [3, 4]], texts, top=2)

    assert labels == [["tires", "worn"], ["crown", "dentist"]]


def test_the_same_vectors_give_the_same_map_whatever_their_order():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    order = rng.permutation(40)

    xy = project_2d(vectors)

    assert xy.shape == (40, 2)
    assert np.allclose(project_2d(vectors[order]), xy[order], atol=1e-5)


def test_the_map_spreads_the_memories_along_their_main_difference_from_left_to_right():
    rng = np.random.default_rng(1)
    vectors = np.zeros((5, 8), dtype=np.float32)
    vectors[:, 0] = [0, 1, 2, 3, 10]  # one memory far out along the first dimension
    vectors[:, 1] = rng.normal(scale=0.1, size=5)

    xy = project_2d(vectors)

    assert np.ptp(xy[:, 0]) > 5 * np.ptp(xy[:, 1])
    assert list(np.argsort(xy[:, 0])) == [0, 1, 2, 3, 4]


def test_a_label_prefers_the_phrase_a_cluster_repeats_and_leaves_peoples_names_and_weekdays_out():
    texts = {
        1: "Alice: Sofia's piano recital is this Saturday.\nBen: The piano recital starts at noon, Sofia is nervous.",
        2: "Alice: Sofia practised the piano recital pieces again, um, for Saturday.",
        3: "Ben: The sewer line backed up again.\nAlice: Call the plumber about the sewer line on Saturday.",
        4: "Ben: The plumber fixed the sewer line, like, finally.",
    }

    labels = cluster_terms([[1, 2], [3, 4]], texts)

    assert labels[0][0] == "piano recital" and labels[1][0] == "sewer line"
    assert labels[1][1] == "plumber"
    words = {word for label in labels for term in label for word in term.split()}
    assert not words & {"alice", "ben", "sofia", "saturday", "um", "like"}
    for label in labels:  # no word twice in a label
        assert len({word for term in label for word in term.split()}) == sum(len(term.split()) for term in label)
