"""What tests of search share: a tiny labelled data set shaped like LoCoMo's."""

import json

import pytest

from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP


@pytest.fixture
def tiny_dataset(tmp_path):
    """Two users' five memories and four questions (one adversarial) of the dev split."""
    memories = [
        ("u1", "s1", DENTIST),
        ("u1", "s2", BUDGET),
        ("u1", "s3", GARDEN),
        ("u2", "s1", STANDUP),
        ("u2", "s2", RECITAL),
    ]
    questions = [
        ("u1", "q0", "What did the dentist say about the crown?", "u1-s1", 4, "single-hop"),
        ("u1", "q1", "How much was the grocery bill?", "u1-s2", 4, "single-hop"),
        ("u2", "q2", "When is the sprint demo?", "u2-s1", 2, "temporal"),
        ("u2", "q3", "What did Caroline paint?", "u2-s2", 5, "adversarial"),
    ]
    (tmp_path / "memories.jsonl").write_text(
        "\n".join(
            json.dumps(
                {
                    "uid": uid,
                    "memory_id": f"{uid}-{sid}",
                    "created_at": f"2024-05-0{i + 1}T10:00:00",
                    "source": "locomo",
                    "split": "dev",
                    "transcript": text,
                }
            )
            for i, (uid, sid, text) in enumerate(memories)
        )
    )
    (tmp_path / "queries.jsonl").write_text(
        "\n".join(
            json.dumps(
                {
                    "uid": uid,
                    "query_id": qid,
                    "split": "dev",
                    "question": q,
                    "category": cat,
                    "category_name": name,
                    "adversarial": cat == 5,
                    "relevant_memory_ids": [rel],
                }
            )
            for uid, qid, q, rel, cat, name in questions
        )
    )
    return tmp_path
