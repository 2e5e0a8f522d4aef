"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no script and no
request to anywhere, so it opens offline and can be mailed or archived as it is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from medialens.insight.charts import draw_all
from medialens.insight.report import OperationsReport

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0;
       background: #fff; line-height: 1.45; font-size: 15px; }
header { padding: 1rem 1.5rem; background: #f6f8fa; border-bottom: 1px solid #d0d7de; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
main { padding: 0 1.5rem 2rem; max-width: 70rem; }
.cards { display: flex; gap: .75rem; flex-wrap: wrap; margin-top: 1rem; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: .6rem .9rem; min-width: 10rem; }
.card b { display: block; font-size: 1.25rem; }
.card span { color: #4b5563; font-size: .85rem; }
table { border-collapse: collapse; margin: .4rem 0; font-size: .9rem; }
th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid #d0d7de; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.alarm { border: 2px solid #b42318; color: #b42318; border-radius: 8px; padding: .6rem .9rem; margin-top: 1rem;
         font-weight: 600; }
.ok { color: #116329; } .bad { color: #b42318; font-weight: 600; } .muted { color: #4b5563; }
figure { margin: .5rem 0; } svg { max-width: 100%; height: auto; }
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for n, value in enumerate(row):
            text = "-" if value is None else str(value)
            cells.append(f'<td class="num">{escape(text)}</td>' if n in numeric else f"<td>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _usd(value: float | None, digits: int = 4) -> str | None:
    return None if value is None else f"${value:,.{digits}f}"


def _figure(charts: dict[str, str], name: str, caption: str) -> str:
    if name not in charts:
        return '<p class="muted">Nothing to draw in this window.</p>'
    return f'<figure role="img" aria-label="{escape(caption)}">{charts[name]}</figure>'


def render_html(report: OperationsReport, title: str = "medialens operations") -> str:
    charts = draw_all(report)
    cost = report.cost
    cards = [
        (str(report.assets), "assets in the window"),
        (f"{report.media_minutes:,.1f}", "media minutes analysed"),
        (
            f"{report.media_minutes_per_wall_minute:,.2f}x" if report.media_minutes_per_wall_minute else "-",
            "media minutes per wall minute",
        ),
        (f"{report.end_to_end_s.p50:,.1f} s" if report.end_to_end_s else "-", "end to end, median"),
        (_usd(cost.per_media_hour_usd, 3) or "-", "per media hour"),
        (_usd(cost.per_asset_usd, 5) or "-", "per asset"),
    ]
    alarms = "".join(
        f'<p class="alarm">Drift: {escape(score.signal)}{f" ({escape(score.model)})" if score.model else ""} '
        f"{score.statistic.upper()} {score.score:g} above {score.threshold:g}</p>"
        for score in report.alarms
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{escape(title)}</h1>",
        f'<p class="muted">{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC · '
        f"generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC · "
        + escape(", ".join(f"{n} {status.lower()}" for status, n in sorted(report.by_status.items())))
        + "</p></header><main>",
        '<div class="cards">'
        + "".join(
            f"<div class='card'><b>{escape(value)}</b><span>{escape(label)}</span></div>" for value, label in cards
        )
        + "</div>",
        alarms,
        "<h2>Throughput</h2>",
        _figure(charts, "throughput", "media minutes and assets finished per time bucket"),
        "<h2>Queues</h2>",
        _figure(charts, "queues", "messages per queue over time"),
        _table(
            ["queue", "most waiting", "most in flight", "longest wait s"],
            ([q.queue, q.max_visible, q.max_in_flight, q.max_wait_s] for q in report.queues),
            numeric=(1, 2, 3),
        )
        if report.queues
        else '<p class="muted">No queue samples in this window (the embedded runtime samples them; on AWS '
        "the SQS metrics are on the dashboard).</p>",
        "<h2>API</h2>",
        _figure(charts, "api", "p50 and p95 milliseconds per API route"),
        _table(
            ["route", "requests", "p50 ms", "p95 ms", "p99 ms"],
            (
                [r.route, r.milliseconds.count, r.milliseconds.p50, r.milliseconds.p95, r.milliseconds.p99]
                for r in report.api_routes
            ),
            numeric=(1, 2, 3, 4),
        )
        + "<p>Answers by status class: "
        + escape(", ".join(f"{n} {c}" for c, n in sorted(report.api_responses.items())) or "none")
        + ".</p>"
        if report.api_routes
        else "",
        "<h2>GPU</h2>",
        _table(
            ["GPU", "mean utilisation %", "max utilisation %", "max memory MiB"],
            ([g.device, g.utilization_mean, g.utilization_max, g.memory_max_mib] for g in report.gpus),
            numeric=(1, 2, 3),
        )
        if report.gpus
        else '<p class="muted">No GPU samples in this window (the heavy worker samples NVML where it has a GPU).</p>',
        "<h2>Latency per stage</h2>",
        _figure(charts, "latency", "p50 and p95 seconds per stage"),
        _table(
            ["stage", "worker", "calls", "p50 s", "p95 s", "p99 s", "batch mean", "batch max"],
            (
                [
                    s.stage,
                    s.worker,
                    s.seconds.count,
                    s.seconds.p50,
                    s.seconds.p95,
                    s.seconds.p99,
                    s.batch_mean,
                    s.batch_max,
                ]
                for s in report.stages
            ),
            numeric=range(2, 8),
        ),
        "<p>End to end per asset: "
        + (
            f"p50 {report.end_to_end_s.p50:g} s, p95 {report.end_to_end_s.p95:g} s"
            if report.end_to_end_s
            else "no finished assets"
        )
        + "; per media minute: "
        + (
            f"p50 {report.seconds_per_media_minute.p50:g} s, p95 {report.seconds_per_media_minute.p95:g} s"
            if report.seconds_per_media_minute
            else "no audio or video"
        )
        + ".</p>",
        "<h2>Model errors</h2>",
        _table(
            ["stage", "calls", "failures", "rate", "models"],
            ([e.stage, e.calls, e.failures, f"{e.rate:.1%}", ", ".join(e.models)] for e in report.errors),
            numeric=(1, 2, 3),
        ),
        "<h2>Model confidence</h2>",
        _figure(charts, "quality", "confidence histograms per model with the reference window"),
        _table(
            ["signal", "model", "language", "items", "mean"],
            ([q.signal, q.model, q.language, q.n, q.mean] for q in report.quality),
            numeric=(3, 4),
        ),
        "<h2>Drift</h2>",
        _figure(charts, "drift", "drift scores against the reference window"),
        _table(
            ["signal", "model", "statistic", "score", "alarm above", "reference items", "recent items", ""],
            (
                [
                    d.signal,
                    d.model,
                    d.statistic,
                    d.score,
                    d.threshold,
                    d.reference_n,
                    d.recent_n,
                    "ALARM" if d.alarm else "moved (watched, no alarm)" if d.drifted else "stable",
                ]
                for d in report.drift
            ),
            numeric=(3, 4, 5, 6),
        ),
        (
            f'<p class="muted">Not compared: {escape(", ".join(report.drift_not_compared))}.</p>'
            if report.drift_not_compared
            else ""
        ),
        "<h2>Cost</h2>",
        _figure(charts, "cost", "cost breakdown by resource"),
        _table(
            ["", "medialens", "managed services"],
            [
                ["per media hour", _usd(cost.per_media_hour_usd, 3), _usd(cost.managed_per_media_hour_usd, 2)],
                [
                    "per 1,000 images",
                    _usd(cost.per_thousand_images_usd, 3),
                    _usd(cost.managed_per_thousand_images_usd, 2),
                ],
                [
                    "per 1M narrated characters",
                    _usd(cost.per_million_narrated_characters_usd, 3),
                    _usd(cost.managed_per_million_characters_usd, 2),
                ],
                ["per asset", _usd(cost.per_asset_usd, 5), None],
                ["the window", _usd(cost.total_usd, 4), None],
                ["fixed, per month (the index)", _usd(cost.fixed_month_usd, 2), None],
            ],
            numeric=(1, 2),
        ),
        '<p class="muted">Managed services: Amazon Transcribe plus Rekognition Video per media hour, '
        "Rekognition Image per image, Polly neural voices per character, at list prices.</p>",
        "</main></body></html>",
    ]
    return "\n".join(part for part in parts if part)
