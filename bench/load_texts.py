"""What the load bench sends: transcripts and questions, drawn from the demo conversations and the
short conversations of the tests (never the LoCoMo data, which is for evaluation only).

Pure Python, imported both by `load.py` (seeding) and by the locust file (the clients).
"""

import json
import random
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import transcripts as short  # noqa: E402

# Short conversations in the style of tests/support/transcripts.py (and those themselves).
SHORT = [short.DENTIST, short.BUDGET, short.STANDUP, short.RECITAL, short.GARDEN, *short.HEALTH, *short.MONEY]

# What a user of the demo conversations would ask (hybrid search answers most with a demo memory).
QUESTIONS = [
    "when is the Riverfront 10K and did I register",
    "how far did I run with Priya",
    "what did the dentist say about my cracked crown",
    "how much does the new crown cost",
    "when is the school recital",
    "plans for mom's birthday dinner",
    "what is the onboarding revamp about",
    "what did Rachel say about Jordan being on three projects",
    "how much is the cedar for the raised garden beds",
    "how deep should the garden beds be",
    "what did the mechanic say about the Civic brakes",
    "how much for front pads and rotors",
    "the house on Linden Street listed price",
    "what rate did Gary at Summit Home Loans offer",
    "did we counter the offer on the house",
    "what did the home inspector say about the roof",
    "how much would a new roof cost",
    "what exercises did Marisol give me for my knee",
    "how far along is Nora with the baby",
    "returning the rain jacket to Amazon",
    "what did we learn in discovery for the warehouse app",
    "Italian class role play at the restaurant",
    "what did Mark say about estimated taxes",
    "net profit for last year",
    "should we hire Tasha or Owen",
    "my vitamin D level at the annual checkup",
    "book club discussion of Tom Lake",
    "flights to visit Lucia cost",
    "price of asparagus at the market",
    "release 4.2 code freeze date",
    "my blood pressure at Dr. Hoffman",
    "lumber and joists for the deck",
    "what did Ms. Alvarez say about Sasha's missing assignments",
    "Sasha's braces and what insurance covers",
    "Laura's start date and onboarding buddy",
    "what did the sleep study show",
    "blog post idea about the nurse notification",
    "Pavel's pitch over drinks",
    "who is interviewing Kevin Marsh",
    "what did the team say at standup about the load test",
    "when is the sprint demo",
    "monthly budget groceries and takeout",
    "the drip irrigation kit for the herbs",
    "flowers for the piano teacher",
    "refinancing the mortgage at a lower rate",
]

STRATEGIES = [("hybrid", 7), ("semantic", 1), ("time_weighted", 1), ("multi_query", 1)]


@cache
def demo_conversations() -> list[dict]:
    path = ROOT / "memories" / "demo" / "demo_memories.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def transcript(rng: random.Random, tag: str) -> dict:
    """One conversation to store: a run of 6 to 40 turns of a demo conversation (as a wearable cuts
    one at a silence) or, one time in four, a short one. Every turn is marked with `tag`, so that
    no text is embedded twice and no cache makes the pipeline look faster than it is."""
    if rng.random() < 0.25:
        lines, source = rng.choice(SHORT).splitlines(), "omi"
    else:
        row = rng.choice(demo_conversations())
        turns = row["transcript"].splitlines()
        length = min(len(turns), rng.randint(6, 40))
        start = rng.randint(0, len(turns) - length)
        lines, source = turns[start : start + length], row["source"]
    return {"transcript": "\n".join(f"{line} ({tag})" for line in lines), "source": source}


def search_body(rng: random.Random, uid: str) -> tuple[str, dict]:
    """A search as an app sends it: mostly the default strategy; returns (strategy, JSON body)."""
    names, weights = zip(*STRATEGIES)
    strategy = rng.choices(names, weights)[0]
    question = rng.choice(QUESTIONS)
    body: dict = {"uid": uid, "k": 5}
    if strategy == "multi_query":
        body |= {"queries": [question, question.split(" ", 3)[-1]], "strategy": strategy}
    else:
        body |= {"query": question} | ({} if strategy == "hybrid" else {"strategy": strategy})
    return strategy, body
