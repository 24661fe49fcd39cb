from dataclasses import dataclass, field
from datetime import datetime

from memories.models import Category
from omi_memory.bounds import moment_in_range, scrub_text

EMOJI = {
    "personal": "🙂",
    "education": "📚",
    "health": "🩺",
    "finance": "💰",
    "legal": "⚖️",
    "philosophy": "🤔",
    "spiritual": "🕊️",
    "science": "🔬",
    "entrepreneurship": "🚀",
    "parenting": "👶",
    "romantic": "❤️",
    "travel": "✈️",
    "inspiration": "✨",
    "technology": "💻",
    "business": "💼",
    "social": "🥂",
    "work": "🗂️",
    "sports": "🏃",
    "politics": "🏛️",
    "literature": "📖",
    "history": "📜",
    "architecture": "🏛️",
    "music": "🎵",
    "weather": "🌦️",
    "news": "📰",
    "entertainment": "🎬",
    "psychology": "🧠",
    "real": "🌍",
    "design": "🎨",
    "family": "👨‍👩‍👧",
    "economics": "📈",
    "environment": "🌱",
    "other": "🧠",
}

MAX_TITLE = 120
MAX_OVERVIEW = 1200
MAX_ITEM = 500
MAX_ITEMS = 20


@dataclass
class ActionItemData:
    description: str
    due_at: datetime | None = None
    completed: bool = False


@dataclass
class EventData:
    title: str
    start: datetime
    description: str = ""
    duration_minutes: int = 30


@dataclass
class Extraction:
    """Omi's structured fields for one transcript."""

    title: str = ""
    overview: str = ""
    emoji: str = ""
    category: str = Category.OTHER
    action_items: list[ActionItemData] = field(default_factory=list)
    events: list[EventData] = field(default_factory=list)
    extractor: str = ""  # the extractor that produced it
    fallback_reason: str = ""  # why the configured extractor's answer was not used, if it was not

    def cleaned(self) -> "Extraction":
        """Bounded lengths, a known category (unknown -> `other`), an emoji, no empty items."""
        category = Category.coerce(self.category)
        items = [
            ActionItemData(_cut(a.description, MAX_ITEM), _in_range(a.due_at), bool(a.completed))
            for a in self.action_items
            if a.description and a.description.strip()
        ][:MAX_ITEMS]
        events = [
            EventData(
                _cut(e.title, MAX_TITLE),
                e.start,
                _cut(e.description, MAX_ITEM),
                min(max(int(e.duration_minutes or 30), 1), 24 * 60),
            )
            for e in self.events
            if e.title and e.title.strip() and _in_range(e.start)
        ][:MAX_ITEMS]
        return Extraction(
            title=_cut(self.title, MAX_TITLE),
            overview=_cut(self.overview, MAX_OVERVIEW),
            emoji=scrub_text(self.emoji or "").strip()[:8] or EMOJI.get(category, "🧠"),
            category=category,
            action_items=items,
            events=events,
            extractor=self.extractor,
            fallback_reason=self.fallback_reason,
        )


def _in_range(moment: datetime | None) -> datetime | None:
    """A date the extractor found, if it is one the database keeps (omi_memory.bounds), else None."""
    return moment if moment is not None and moment_in_range(moment) else None


def _cut(text: str, limit: int) -> str:
    text = " ".join(scrub_text(text or "").split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


class Extractor:
    """Reads a transcript and returns its structured fields."""

    name = "base"
    # How many extractions may run at once in one process (None: EXTRACT_CONCURRENCY). Work bound
    # by the local CPU gains nothing from more than one; calls to a remote service do.
    concurrency: int | None = 1

    def extract(self, *, transcript: str, started_at: datetime, language: str = "en") -> Extraction:
        raise NotImplementedError
