"""The chart helper: data in, SVG geometry out (drawn by templates/_chart.html)."""

import pytest

from omi_memory.charts import PALETTE, Point, columns, horizontal_bars, nice_ticks, scatter


@pytest.mark.parametrize(
    "low, high, options, ticks",
    [
        (0, 1, {}, [0, 0.25, 0.5, 0.75, 1]),
        (0, 37, {"count": 4, "whole": True}, [0, 20, 40]),
        (0, 3, {"count": 4, "whole": True}, [0, 1, 2, 3]),
        (0, 0, {"whole": True}, [0, 1]),  # nothing to show still has an axis
        (-0.63, 0.6, {}, [-1, -0.5, 0, 0.5, 1]),
        (-0.63, 0.6, {"within": True}, [-0.5, 0, 0.5]),
    ],
)
def test_ticks_are_round_values_around_or_within_the_range(low, high, options, ticks):
    assert nice_ticks(low, high, **options) == ticks


def labels(chart, kind="tick") -> list[str]:
    return [text.text for text in chart.texts if text.kind == kind]


def test_horizontal_bars_are_as_long_as_their_values_and_say_them():
    chart = horizontal_bars(
        title="scores",
        groups=["hybrid", "semantic"],
        series=[("nDCG@10", [0.8, 0.4]), ("R@5", [1.3, None])],
        x_title="score",
        y_title="strategy",
    )

    bars = {(bar.group, bar.series): bar for bar in chart.bars}
    assert bars["hybrid", "nDCG@10"].width == pytest.approx(2 * bars["semantic", "nDCG@10"].width)
    assert bars["hybrid", "R@5"].width == pytest.approx(bars["hybrid", "nDCG@10"].width / 0.8)  # beyond 1: to the end
    assert bars["hybrid", "R@5"].text == "1.300" and bars["semantic", "R@5"].width == 0
    assert bars["semantic", "nDCG@10"].title == "semantic: nDCG@10 0.400"
    assert {bar.colour for bar in chart.bars if bar.series == "R@5"} == {PALETTE[1]}
    assert labels(chart) == ["0", "0.25", "0.5", "0.75", "1", "hybrid", "semantic"]
    assert labels(chart, "title") == ["score", "strategy"] and labels(chart, "legend") == ["nDCG@10", "R@5"]
    assert [s.colour for s in chart.swatches] == list(PALETTE[:2])
    assert all(bar.x + bar.width <= chart.width and bar.y + bar.height <= chart.height for bar in chart.bars)


def test_columns_rise_with_their_values_over_a_labelled_axis():
    chart = columns(
        title="per hour",
        values=[0, 3, 6],
        labels=["first", "second", "third"],
        edges=["3h", "2h", "1h", "now"],
        x_title="hours ago",
        y_title="count",
    )

    empty, low, high = chart.bars
    assert high.height == pytest.approx(2 * low.height) and empty.height == 0
    assert low.y + low.height == high.y + high.height  # on one baseline
    assert (empty.text, low.text, high.title) == ("", "3", "third: 6")  # no 0 written over an empty column
    assert labels(chart)[:4] == ["3h", "2h", "1h", "now"] and labels(chart)[4:] == ["0", "2", "4", "6"]
    edges = [text.x for text in chart.texts if text.text in ("3h", "now")]
    assert edges[0] <= empty.x and high.x + high.width <= edges[1]  # the edges bound the columns


def test_a_scatter_keeps_every_point_inside_its_axes_in_order():
    points = [Point(x=x, y=y, colour="#000", title=f"p{n}") for n, (x, y) in enumerate([(-2, 5), (0, 0), (3, -1)])]

    chart = scatter(title="map", points=points, x_title="pc 1", y_title="pc 2")

    axes = [line for line in chart.lines if line.kind == "axis"]
    left, bottom = axes[1].x1, axes[0].y1
    right, top = axes[0].x2, axes[1].y1
    for point in chart.points:
        assert left < point.cx - point.r and point.cx + point.r < right
        assert top < point.cy - point.r and point.cy + point.r < bottom
    assert [p.cx for p in chart.points] == sorted(p.cx for p in chart.points)  # x grows rightwards
    assert [p.cy for p in chart.points] == sorted(p.cy for p in chart.points)  # y grows upwards
    assert labels(chart, "title") == ["pc 1", "pc 2"] and "0" in labels(chart)
    same = scatter(title="one", points=points[:1], x_title="x", y_title="y").points[0]
    assert left < same.cx < right and top < same.cy < bottom  # a single point: no span, no division by 0


def test_lines_break_where_a_series_has_no_value_and_every_value_has_a_tooltip():
    from omi_memory.charts import Series, lines

    chart = lines(
        title="latency",
        labels=["10:00", "11:00", "12:00", "13:00"],
        series=[Series("hybrid p95", [40.0, None, 80.0, 20.0], PALETTE[0], dashed=True)],
        x_title="hour",
        y_title="ms",
        unit=" ms",
    )

    assert [len(path.points.split()) for path in chart.paths] == [1, 2] and chart.paths[0].dashed
    assert [p.title for p in chart.points] == [
        "hybrid p95, 10:00: 40 ms",
        "hybrid p95, 12:00: 80 ms",
        "hybrid p95, 13:00: 20 ms",
    ]
    highest, lowest = chart.points[1], chart.points[2]
    assert highest.cy < chart.points[0].cy < lowest.cy  # up is more
    assert labels(chart) == ["10:00", "11:00", "12:00", "13:00", "0", "50", "100"]


def test_points_at_one_place_are_moved_apart_so_that_each_stays_visible():
    import math

    points = [Point(x=0.5, y=0.5, colour=PALETTE[0], title=f"memory {i}") for i in range(6)]
    points.append(Point(x=1.0, y=1.0, colour=PALETTE[1], title="far"))

    chart = scatter(title="map", points=points, x_title="pc 1", y_title="pc 2")

    assert [p.title for p in chart.points] == [p.title for p in points]
    drawn = chart.points
    for i, a in enumerate(drawn):
        for b in drawn[i + 1 :]:
            assert math.hypot(a.cx - b.cx, a.cy - b.cy) >= a.r
    assert all(math.hypot(p.cx - drawn[0].cx, p.cy - drawn[0].cy) < 4 * p.r for p in drawn[:6])  # still there
