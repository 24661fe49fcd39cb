"""The local extractor on the 40 demo memories, before and after a change, as a Markdown table.

    .venv/bin/python bench/extraction_review.py --before COMMIT > docs/extraction-review.md

"Before" is `memories/parts/extractors/local.py` as it was at COMMIT, loaded beside the current
one; each memory starts when `load_demo` says it does. Category is left out (both share it).
"""

import argparse
import importlib.util
import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = "memories/parts/extractors/local.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit whose extractor is 'before'")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omi_memory.settings")
    os.environ.setdefault("SECRET_KEY", f"review-{secrets.token_urlsafe(48)}")
    import django

    django.setup()
    from memories.management.commands.load_demo import DEMO_FILE, DEMO_TODAY
    from memories.parts.extractors.local import LocalExtractor

    old = _module_at(args.before)
    before, after = old.LocalExtractor(), LocalExtractor()
    before.categorize = after.categorize = lambda transcript: "other"  # the model: slow, and unchanged
    rows = [json.loads(line) for line in DEMO_FILE.read_text().splitlines() if line.strip()]
    print(f"# Local extraction on the demo memories: before (`{args.before[:7]}`) and after\n")
    print("Made by `bench/extraction_review.py`; times are those the transcript names, relative to the")
    print("memory's start (shown). Events: title, then when.\n")
    for row in rows:
        day = DEMO_TODAY - timedelta(days=row["days_ago"])
        started = day.replace(hour=row["hour"], minute=row["minute"], second=0, microsecond=0)
        if started > DEMO_TODAY:
            started -= timedelta(days=1)
        old_x = before.extract(transcript=row["transcript"], started_at=started)
        new_x = after.extract(transcript=row["transcript"], started_at=started)
        print(f"## {row['external_id']} ({started:%a %Y-%m-%d %H:%M})\n")
        print("| | before | after |\n|---|---|---|")
        print(f"| title | {_cell([old_x.title])} | {_cell([new_x.title])} |")
        print(f"| events | {_cell(_events(old_x))} | {_cell(_events(new_x))} |")
        print(f"| action items | {_cell(_items(old_x))} | {_cell(_items(new_x))} |\n")


def _module_at(commit: str):
    source = subprocess.run(
        ["git", "show", f"{commit}:{MODULE}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    spec = importlib.util.spec_from_loader("memories.parts.extractors.local_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "memories.parts.extractors"
    exec(compile(source, f"{commit[:7]}:{MODULE}", "exec"), module.__dict__)
    return module


def _events(extraction) -> list[str]:
    return [f"{e.title} — {e.start:%a %b %d %H:%M}" for e in extraction.events]


def _items(extraction) -> list[str]:
    return [a.description + (f" (due {a.due_at:%a %b %d %H:%M})" if a.due_at else "") for a in extraction.action_items]


def _cell(lines: list[str]) -> str:
    return "<br>".join(line.replace("|", "\\|") for line in lines) or "—"


if __name__ == "__main__":
    main()
