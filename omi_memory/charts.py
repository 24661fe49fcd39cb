"""Charts drawn by the server: small pure functions that turn data into SVG geometry (a `Chart`),
which `templates/_chart.html` draws: its axes, then its bars or points.

Each chart has axes with tick labels and axis titles, and shows its values: a bar's value is
written beside it, and every bar and point has a `<title>` (its tooltip).

- `horizontal_bars`: groups of bars, one bar per series (e.g. metrics of each strategy).
- `columns`: one vertical bar per value (e.g. memories indexed in each 5 minutes of an hour).
- `scatter`: points at (x, y), each with a colour, a tooltip and a link (e.g. memories on a map).
- `lines`: a line per series over labelled steps (e.g. latency percentiles per strategy per hour),
  a point with its tooltip at each value, and a legend (each series' colour and dash).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

# Tableau 10: series and categories (a chart's series, a run's clusters) take these in order, cycled.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")

TITLE_SPACE = 18  # beside the y axis, for its title
TICK_SPACE = 14  # below the x axis, down to its tick labels' baseline
LEGEND_SPACE = 26  # above a chart with a legend


def colour(index: int) -> str:
    """The colour of the `index`-th series or category."""
    return PALETTE[index % len(PALETTE)]


def palette_class(index: int) -> str:
    """The CSS class (static/css/app.css) that gives an HTML element the `index`-th colour as `--colour`
    (no style attribute: the Content Security Policy forbids them)."""
    return f"palette-{index % len(PALETTE)}"


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    kind: str = "grid"  # "grid" (at a tick) or "axis"


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "middle"  # SVG text-anchor
    kind: str = "tick"  # "tick" (a tick label), "title" (an axis title) or "legend"
    rotate: bool = False  # the y axis's title, read bottom to top


@dataclass(frozen=True)
class Swatch:
    """A legend's colour box (its name is a Text beside it)."""

    x: float
    y: float
    colour: str
    size: int = 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    text: str  # the value as written beside the bar ("" writes nothing)
    title: str  # the tooltip
    text_x: float
    text_y: float
    text_anchor: str = "start"
    group: str = ""
    series: str = ""


@dataclass(frozen=True)
class Point:
    """A point of a scatter: `x`, `y` are data, `cx`, `cy` where `scatter` draws it."""

    x: float
    y: float
    colour: str
    title: str
    href: str = ""
    id: str = ""
    cx: float = 0.0
    cy: float = 0.0
    r: float = 7


@dataclass(frozen=True)
class Series:
    """A line of a `lines` chart: a value per step (None: no value there, the line breaks)."""

    name: str
    values: Sequence[float | None]
    colour: str
    dashed: bool = False


@dataclass(frozen=True)
class Path:
    """A polyline through `points` ("x,y x,y ...")."""

    points: str
    colour: str
    dashed: bool = False


@dataclass(frozen=True)
class Chart:
    title: str  # what the chart shows, for screen readers
    width: float
    height: float
    lines: tuple[Line, ...]
    texts: tuple[Text, ...]
    swatches: tuple[Swatch, ...] = ()
    bars: tuple[Bar, ...] = ()
    points: tuple[Point, ...] = ()
    paths: tuple[Path, ...] = ()
    legend: tuple[Series, ...] = ()  # drawn under the chart, in HTML (it wraps on a phone)


def nice_ticks(low: float, high: float, *, count: int = 5, whole: bool = False, within: bool = False) -> list[float]:
    """About `count` evenly spaced round values (steps of 1, 2, 2.5 or 5 times a power of ten)
    from at or below `low` to at or above `high` (an axis that starts and ends on a tick), or with
    `within` only those between them (an axis that spans the data); `whole`: whole numbers only."""
    if not high > low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    if whole:
        raw = max(raw, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(
        f * magnitude for f in (1, 2, 2.5, 5, 10) if f * magnitude >= raw * (1 - 1e-9) and not (whole and f == 2.5)
    )
    if within:
        start, end = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    else:
        start, end = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 10) + 0.0 for i in range(start, end + 1)]


def number(value: float, decimals: int | None = None) -> str:
    """A value as a chart writes it: with `decimals`, or as short as it goes (0.25, 10, -0.3)."""
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return f"{round(value, 10) + 0.0:g}"


def _axes(
    *,
    box: tuple[float, float, float, float],
    height: float,
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_title: str,
    y_title: str,
    x_grid: bool,
    y_grid: bool,
    y_title_above: bool = False,
) -> tuple[list[Line], list[Text]]:
    """The frame of a plot in `box` (left, top, right, bottom): grid lines and labels at the
    ticks (positions already in SVG coordinates), the two axes, and their titles (the y axis's
    beside it, read upwards, or above its labels: a heading for a column of names)."""
    left, top, right, bottom = box
    lines = [Line(x, top, x, bottom) for x, _ in x_ticks if x_grid]
    lines += [Line(left, y, right, y) for y, _ in y_ticks if y_grid]
    lines += [Line(left, bottom, right, bottom, "axis"), Line(left, top, left, bottom, "axis")]
    texts = [Text(x, bottom + TICK_SPACE, text) for x, text in x_ticks]
    texts += [Text(left - 6, y + 4, text, anchor="end") for y, text in y_ticks]
    texts += [
        Text(round((left + right) / 2, 1), height - 4, x_title, kind="title"),
        Text(left - 6, 13, y_title, anchor="end", kind="title")
        if y_title_above
        else Text(12, round((top + bottom) / 2, 1), y_title, kind="title", rotate=True),
    ]
    return lines, texts


def horizontal_bars(
    *,
    title: str,
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    x_title: str,
    y_title: str,
    maximum: float = 1.0,
    decimals: int = 3,
) -> Chart:
    """Grouped horizontal bars: a group per label in `groups` (named along the y axis, `y_title`
    above the names), a bar per series (name, a value per group; None counts as 0) in the
    series' colour, with a legend above.
    The value axis runs from 0 to `maximum` (rounded up to a tick); longer bars stop there."""
    left, plot_width, bar_height, gap, group_gap = 150, 360, 14, 2, 12  # group names left of `left`
    top = LEGEND_SPACE
    ticks = nice_ticks(0.0, maximum)
    scale_max = ticks[-1]
    bars, y_ticks, y = [], [], top
    for index, group in enumerate(groups):
        y_ticks.append((y + (len(series) * (bar_height + gap) - gap) / 2, group))
        for n, (name, values) in enumerate(series):
            value = float(values[index] or 0.0)
            width = round(plot_width * max(0.0, min(value, scale_max)) / scale_max, 1)
            text = number(value, decimals)
            bars.append(
                Bar(
                    x=left,
                    y=y,
                    width=width,
                    height=bar_height,
                    colour=colour(n),
                    text=text,
                    title=f"{group}: {name} {text}",
                    text_x=left + width + 4,
                    text_y=y + bar_height - 3,
                    group=group,
                    series=name,
                )
            )
            y += bar_height + gap
        y += group_gap - gap
    bottom = y - group_gap + gap
    height = bottom + TICK_SPACE + 18
    lines, texts = _axes(
        box=(left, top, left + plot_width, bottom),
        height=height,
        x_ticks=[(left + plot_width * t / scale_max, number(t)) for t in ticks],
        y_ticks=y_ticks,
        x_title=x_title,
        y_title=y_title,
        x_grid=True,
        y_grid=False,
        y_title_above=True,
    )
    swatches = [Swatch(left + n * 100, 4, colour(n)) for n in range(len(series))]
    texts += [Text(s.x + 14, 13, name, anchor="start", kind="legend") for s, (name, _) in zip(swatches, series)]
    return Chart(title, left + plot_width + 50, height, tuple(lines), tuple(texts), tuple(swatches), tuple(bars))


def columns(
    *,
    title: str,
    values: Sequence[float],
    labels: Sequence[str],
    x_title: str,
    y_title: str,
    edges: Sequence[str] | None = None,
    width: int = 600,
    plot_height: int = 80,
    decimals: int = 0,
) -> Chart:
    """One vertical bar per value, in the first colour, its value written above it (when not 0)
    and in its tooltip with its label. The x axis names each bar under it, or with `edges` (one
    more than the values) the boundaries between bars (e.g. the minutes between time buckets)."""
    left, top, right = TITLE_SPACE + 30, 14, width - 16  # room for the last tick label
    bottom = top + plot_height
    height = bottom + TICK_SPACE + 18
    ticks = nice_ticks(0.0, max(values, default=0.0), count=4, whole=decimals == 0)
    scale_max = ticks[-1]
    slot = (right - left) / max(len(values), 1)
    bars = []
    for i, (value, label) in enumerate(zip(values, labels)):
        size = round(plot_height * max(0.0, value) / scale_max, 1)
        text = number(value, decimals)
        bars.append(
            Bar(
                x=round(left + i * slot + 2, 1),
                y=round(bottom - size, 1),
                width=round(slot - 4, 1),
                height=size,
                colour=colour(0),
                text=text if value else "",
                title=f"{label}: {text}",
                text_x=round(left + (i + 0.5) * slot, 1),
                text_y=round(bottom - size - 3, 1),
                text_anchor="middle",
            )
        )
    if edges is not None:
        x_ticks = [(round(left + i * slot, 1), text) for i, text in enumerate(edges)]
    else:
        x_ticks = [(round(left + (i + 0.5) * slot, 1), text) for i, text in enumerate(labels)]
    lines, texts = _axes(
        box=(left, top, right, bottom),
        height=height,
        x_ticks=x_ticks,
        y_ticks=[(round(bottom - plot_height * t / scale_max, 1), number(t)) for t in ticks],
        x_title=x_title,
        y_title=y_title,
        x_grid=False,
        y_grid=True,
    )
    return Chart(title, width, height, tuple(lines), tuple(texts), bars=tuple(bars))


def scatter(
    *, title: str, points: Sequence[Point], x_title: str, y_title: str, width: int = 640, height: int = 400
) -> Chart:
    """`points` placed on axes that span their x and y, each drawn as a circle of its colour with
    its tooltip, linking to its `href`; points that would cover one another are moved apart."""
    left, top, right, bottom = TITLE_SPACE + 34, 12, width - 12, height - TICK_SPACE - 22
    pad = max((p.r for p in points), default=0) + 2  # a point at the end of an axis stays inside

    def axis(values: list[float], start: float, end: float):
        low, high = min(values, default=0.0), max(values, default=0.0)
        if not high > low:
            low, high = low - 0.5, high + 0.5
        return nice_ticks(low, high, within=True), lambda v: round(start + (v - low) / (high - low) * (end - start), 1)

    x_ticks, to_x = axis([p.x for p in points], left + pad, right - pad)
    y_ticks, to_y = axis([p.y for p in points], bottom - pad, top + pad)
    lines, texts = _axes(
        box=(left, top, right, bottom),
        height=height,
        x_ticks=[(to_x(t), number(t)) for t in x_ticks],
        y_ticks=[(to_y(t), number(t)) for t in y_ticks],
        x_title=x_title,
        y_title=y_title,
        x_grid=True,
        y_grid=True,
    )
    placed = _apart([replace(p, cx=to_x(p.x), cy=to_y(p.y)) for p in points])
    return Chart(title, width, height, tuple(lines), tuple(texts), points=tuple(placed))


def _apart(points: list[Point]) -> list[Point]:
    """The points, each moved (along a small spiral, a few pixels) until its centre is at least its
    radius from every point before it: points at one place all stay visible and can be hovered."""
    placed: list[Point] = []
    for p in points:
        cx, cy = p.cx, p.cy
        for step in range(1, 200):
            if all(math.hypot(cx - q.cx, cy - q.cy) >= p.r for q in placed):
                break
            angle, radius = step * 2.39996, p.r * math.sqrt(step) * 0.6  # the golden angle: an even spread
            cx, cy = round(p.cx + radius * math.cos(angle), 1), round(p.cy + radius * math.sin(angle), 1)
        placed.append(replace(p, cx=cx, cy=cy))
    return placed


def lines(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    x_title: str,
    y_title: str,
    unit: str = "",
    width: int = 640,
    plot_height: int = 160,
    max_labels: int = 8,
    notes: Sequence[str] = (),
) -> Chart:
    """A line per series over the steps named by `labels` (at most `max_labels` of them written
    under the x axis, evenly spread), from 0 to the largest value; each value is a point whose
    tooltip names the series, the step and the value (with `unit`), and the step's note if
    `notes` has one (e.g. what a run used)."""
    left, top, right = TITLE_SPACE + 34, 10, width - 24
    bottom = top + plot_height
    height = bottom + TICK_SPACE + 18
    largest = max((v for s in series for v in s.values if v is not None), default=0.0)
    ticks = nice_ticks(0.0, largest, count=4)
    slot = (right - left) / max(len(labels), 1)

    def at(i: int, value: float) -> tuple[float, float]:
        return round(left + (i + 0.5) * slot, 1), round(bottom - plot_height * value / ticks[-1], 1)

    paths, points = [], []
    for s in series:
        run: list[str] = []
        for i, value in enumerate([*s.values, None]):
            if value is None:
                if run:
                    paths.append(Path(" ".join(run), s.colour, s.dashed))
                run = []
                continue
            cx, cy = at(i, value)
            run.append(f"{cx},{cy}")
            tip = f"{s.name}, {labels[i]}: {number(value)}{unit}"
            if i < len(notes) and notes[i]:
                tip += f" ({notes[i]})"
            points.append(Point(x=i, y=value, colour=s.colour, title=tip, cx=cx, cy=cy, r=3))
    every = math.ceil(len(labels) / max_labels) if labels else 1
    lines_, texts = _axes(
        box=(left, top, right, bottom),
        height=height,
        x_ticks=[(at(i, 0)[0], label) for i, label in enumerate(labels) if i % every == 0],
        y_ticks=[(at(0, t)[1], number(t)) for t in ticks],
        x_title=x_title,
        y_title=y_title,
        x_grid=False,
        y_grid=True,
    )
    return Chart(
        title,
        width,
        height,
        tuple(lines_),
        tuple(texts),
        points=tuple(points),
        paths=tuple(paths),
        legend=tuple(series),
    )
