"""The report's charts, drawn with matplotlib as SVG text: no files, no fonts fetched, no script,
so the page that holds them opens offline. Each function answers None when it has nothing to draw.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from medialens.domain.quality import QUALITY_BINS
from medialens.insight.report import OperationsReport, Percentiles

INK = "#1f2328"
ACCENT = "#0b57d0"
REFERENCE = "#9a6700"
DANGER = "#b42318"
MUTED = "#6b7280"
MAX_PANELS = 9

_STYLE: Any = {  # matplotlib types its keys as literals
    "svg.fonttype": "none",  # text stays text: smaller, and it takes the page's font
    "font.size": 9,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "medialens",  # stable ids: the same report draws the same SVG
}


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    with rc_context(_STYLE):
        yield Figure(figsize=(width, height), layout="constrained")


def _times(moments: list[datetime]) -> np.ndarray:
    """UTC datetimes as numpy's naive datetime64, which matplotlib draws as dates."""
    return np.array([moment.replace(tzinfo=None) for moment in moments], dtype="datetime64[s]")


def _svg(figure: Figure) -> str:
    """The figure as SVG text; called inside its ``_figure`` block, whose style still applies."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prologue and doctype: it sits inside HTML


def throughput(report: OperationsReport) -> str | None:
    if not report.throughput:
        return None
    with _figure(7.5, 2.6) as figure:
        axes: Axes = figure.add_subplot()
        starts = _times([bucket.start for bucket in report.throughput])
        width = report.bucket_seconds / 86400 * 0.8  # matplotlib dates are in days
        axes.bar(starts, [b.media_minutes for b in report.throughput], width=width, color=ACCENT, label="media minutes")
        axes.set_ylabel("media minutes analysed")
        counts = axes.twinx()
        counts.plot(starts, [b.assets for b in report.throughput], color=INK, marker="o", label="assets finished")
        counts.plot(starts, [b.failed for b in report.throughput], color=DANGER, marker="x", label="failed")
        counts.set_ylabel("assets")
        counts.set_ylim(bottom=0)
        start, end = _times([report.since, report.until])
        axes.set_xlim(start, end)  # the whole window, however sparse
        counts.spines["right"].set_visible(True)
        figure.legend(loc="outside upper center", ncols=3, frameon=False)
        figure.autofmt_xdate()
        return _svg(figure)


def _percentile_bars(rows: list[tuple[str, Percentiles]], xlabel: str, log: bool) -> str | None:
    """p95 (wide, pale) and p50 (narrow) bars per row, the slowest at the top."""
    if not rows:
        return None
    rows = sorted(rows, key=lambda row: row[1].p95)
    with _figure(7.5, 0.28 * len(rows) + 0.9) as figure:
        axes = figure.add_subplot()
        names = [name for name, _ in rows]
        axes.barh(names, [p.p95 for _, p in rows], color="#c7d7f5", label="p95")
        axes.barh(names, [p.p50 for _, p in rows], color=ACCENT, height=0.5, label="p50")
        if log:
            axes.set_xscale("log")
        axes.set_xlabel(xlabel)
        axes.legend(loc="lower right", frameon=False)
        return _svg(figure)


def latency(report: OperationsReport) -> str | None:
    rows = [(stage.stage, stage.seconds) for stage in report.stages]
    return _percentile_bars(rows, "seconds per call (log scale)", log=True)


def quality(report: OperationsReport) -> str | None:
    views = [v for v in report.quality if v.n][:MAX_PANELS]
    if not views:
        return None
    columns = min(3, len(views))
    rows = -(-len(views) // columns)
    with _figure(2.6 * columns, 2.0 * rows + 0.3) as figure:
        edges = [i / QUALITY_BINS for i in range(QUALITY_BINS)]
        for n, view in enumerate(views, start=1):
            axes = figure.add_subplot(rows, columns, n)
            shares = [c / view.n for c in view.counts]
            axes.bar(edges, shares, width=1 / QUALITY_BINS, align="edge", color=ACCENT, alpha=0.8, label="this window")
            reference_n = sum(view.reference_counts)
            if reference_n:
                reference = [c / reference_n for c in view.reference_counts]
                axes.step([*edges, 1.0], [*reference, reference[-1]], where="post", color=REFERENCE, label="reference")
            title = view.signal.replace("_", " ") + (f" · {view.language}" if view.language else "")
            axes.set_title(f"{title}\n{view.model}", fontsize=8)
            axes.set_xlim(0, 1)
            axes.set_yticks([])
            if n == 1:
                axes.legend(fontsize=7, frameon=False)
        return _svg(figure)


def drift(report: OperationsReport) -> str | None:
    if report.drift_over_time:
        with _figure(7.5, 2.6) as figure:
            axes = figure.add_subplot()
            for series in report.drift_over_time:
                axes.plot(
                    _times([p.start for p in series.points]),
                    [p.score for p in series.points],
                    marker="o",
                    label=f"{series.signal} · {series.model}",
                )
            axes.axhline(report.drift_over_time[0].threshold, color=DANGER, linestyle="--", label="alarm")
            axes.set_ylabel("PSI against the reference")
            axes.legend(fontsize=7, frameon=False, loc="upper left")
            figure.autofmt_xdate()
            return _svg(figure)
    if not report.drift:
        return None
    scores = report.drift
    with _figure(7.5, 0.3 * len(scores) + 0.9) as figure:
        axes = figure.add_subplot()
        names = [f"{s.signal} · {s.model}" if s.model else s.signal for s in scores]
        ratios = [s.score / s.threshold for s in scores]
        axes.barh(names, ratios, color=[DANGER if s.alarm else REFERENCE if s.drifted else ACCENT for s in scores])
        axes.axvline(1.0, color=DANGER, linestyle="--")
        axes.set_xlabel("score / alarm threshold")
        return _svg(figure)


def cost(report: OperationsReport) -> str | None:
    summary = report.cost
    if not summary.assets:
        return None
    parts = summary.breakdown.model_dump()
    with _figure(7.5, 2.4) as figure:
        axes = figure.add_subplot()
        names = [name.removesuffix("_usd").replace("_", " ") for name in parts]
        axes.barh(names, list(parts.values()), color=ACCENT)
        axes.set_xlabel(f"USD over the window ({summary.assets} assets)")
        return _svg(figure)


def queues(report: OperationsReport) -> str | None:
    shown = [q for q in report.queues if q.max_visible or q.max_in_flight or "dlq" not in q.queue]
    if not shown:
        return None
    with _figure(7.5, 2.6) as figure:
        axes = figure.add_subplot()
        for queue in shown:
            axes.plot(
                _times([p.at for p in queue.points]),
                [p.visible + p.in_flight for p in queue.points],
                label=queue.queue,
                drawstyle="steps-post",
            )
        start, end = _times([report.since, report.until])
        axes.set_xlim(start, end)
        axes.set_ylim(bottom=0)
        axes.set_ylabel("messages (waiting + in flight)")
        axes.legend(fontsize=7, frameon=False, loc="upper left")
        figure.autofmt_xdate()
        return _svg(figure)


def api(report: OperationsReport) -> str | None:
    rows = [(route.route, route.milliseconds) for route in report.api_routes]
    return _percentile_bars(rows, "milliseconds per request", log=False)


CHARTS = {
    "throughput": throughput,
    "queues": queues,
    "api": api,
    "latency": latency,
    "quality": quality,
    "drift": drift,
    "cost": cost,
}


def draw_all(report: OperationsReport) -> dict[str, str]:
    return {name: svg for name, draw in CHARTS.items() if (svg := draw(report)) is not None}
