"""``medialens``: ingest, search, status, workers and models, for both local profiles.

Commands are thin: they wire the library to the terminal (rich progress, tables, JSON). What only
some commands use (uploads and admission with boto3 and Powertools, the runtime, the server, the
model store, progress bars) is imported by those commands, so a search or a status loads no more
than it needs.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from medialens.domain.assets import Asset, AssetStatus, MediaType, UploadOptions, utcnow
from medialens.domain.moments import Modality
from medialens.domain.search import SearchFilters, SearchMode, SearchQuery
from medialens.errors import ConfigurationError, InvalidMediaError
from medialens.settings import Profile, Settings, get_settings

if TYPE_CHECKING:
    from medialens.local.notifications import DropNotifications
    from medialens.services import Services

app = typer.Typer(help="medialens: find the moment where X is said or shown.", no_args_is_help=True)
models_app = typer.Typer(help="The model store: build models from packaged weights, list them.")
local_app = typer.Typer(help="Local AWS emulation helpers.")
app.add_typer(models_app, name="models")
app.add_typer(local_app, name="local")

console = Console()
err_console = Console(stderr=True)

STATUS_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "RUNNING": "yellow", "QUEUED": "cyan"}


# The local wiring (services, registry, index, numpy with them) and the reports are imported by
# the commands that use them: a search a running server answers needs none of it, and importing
# it was half of that search's time.
def local_services(settings: Settings) -> Services:
    from medialens.local.wiring import local_services as wire

    return wire(settings)


def drop_outbox(settings: Settings) -> DropNotifications:
    from medialens.local.wiring import drop_outbox as outbox

    return outbox(settings)


def runner_active(settings: Settings) -> bool:
    from medialens.local.wiring import runner_active as active

    return active(settings)


def asset_row(asset: Asset) -> dict[str, Any]:
    from medialens.reporting import asset_row as row

    return row(asset)


def summary(assets: list[Asset]) -> dict[str, Any]:
    from medialens.reporting import summary as summarise

    return summarise(assets)


def _settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


def _emulated(settings: Settings) -> bool:
    return settings.profile is Profile.AWS and settings.aws_endpoint_url is not None


def _result_line(path: str, asset: Asset | None) -> str:
    if asset is None:
        return f"[yellow]?[/] {path}  not admitted yet"
    status = asset.status.value
    style = STATUS_STYLE.get(status, "white")
    media = asset.media_type.value if asset.media_type else "-"
    if asset.status is AssetStatus.SUCCEEDED:
        detail = f"{asset.moment_count} moments in {asset.elapsed_seconds:.1f}s"
    elif asset.status is AssetStatus.FAILED:
        detail = asset.error_reason or asset.error_code or "failed"
    else:
        detail = f"at {asset.stage or 'admission'}"
    mark = {"SUCCEEDED": "✓", "FAILED": "✗"}.get(status, "…")
    return f"[{style}]{mark} {status:<9}[/] {path}  [dim]{asset.asset_id} {media}[/]  {detail}"


WaitFunction = Callable[..., list[Asset]]


def _wait_with_progress(wait: WaitFunction, asset_ids: list[str], timeout_s: float) -> list[Asset]:
    """Shows one bar of assets reaching a terminal state while ``wait`` blocks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]analysing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("analyse", total=len(asset_ids), detail="")

        def on_progress(assets: list[Asset]) -> None:
            done = sum(1 for a in assets if a.status.terminal)
            failed = sum(1 for a in assets if a.status is AssetStatus.FAILED)
            running = [a.stage for a in assets if not a.status.terminal and a.stage]
            detail = f"[red]{failed} failed[/] " if failed else ""
            detail += f"[dim]{running[0]}[/]" if running else ""
            progress.update(task, completed=done, detail=detail)

        return wait(asset_ids, timeout_s=timeout_s, on_progress=on_progress)


def _poll_registry(services: Services) -> WaitFunction:
    """Waiting when the pipeline runs elsewhere (a background runner, AWS): read the registry."""
    return functools.partial(services.registry.wait_until_finished, poll_s=0.5)


def _spawn_detached(settings: Settings, arguments: list[str], log_name: str) -> None:
    """Runs ``medialens <arguments>`` in a session of its own (it outlives this command), its
    output appended to ``MEDIALENS_HOME/logs/<log_name>``."""
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / log_name).open("ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "medialens.cli.main", *arguments],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _spawn_background_runner(settings: Settings) -> None:
    _spawn_detached(settings, ["worker", "--until-idle"], "runner.out")


def _spawn_search_server(settings: Settings) -> bool:
    """Starts ``medialens serve --no-pipeline`` for the home in the background (see
    ``search_server_idle_s``) unless one is starting already; True when this call started it."""
    from medialens.local.announce import claim_server_start

    if not claim_server_start(settings.home):
        return False
    idle = f"{settings.search_server_idle_s:g}"
    _spawn_detached(settings, ["serve", "--no-pipeline", "--port", "0", "--idle-exit", idle], "search-server.out")
    return True


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to upload to the drop bucket.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Block until every file is analysed.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most with --wait.")] = 3600,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    follow_links: Annotated[
        bool, typer.Option("--follow-links", help="Also follow links that lead outside the given folders.")
    ] = False,
    narrate: Annotated[
        bool,
        typer.Option(
            "--narrate", help="Documents also get a narration (MP3 + speech marks); sets S3 metadata medialens-narrate."
        ),
    ] = False,
    language: Annotated[
        str | None,
        typer.Option(
            "--language",
            help="The spoken language (ISO 639-1, e.g. sv), when you know it: speech is transcribed in it "
            "instead of identifying it; sets S3 metadata medialens-language.",
        ),
    ] = None,
) -> None:
    """Upload files to the drop bucket and analyse them (exit code 1 if any file failed or could
    not be uploaded)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from medialens.local.uploads import Skipped, plan_uploads, upload

    settings = _settings()
    try:
        options = UploadOptions(narrate=narrate, language=language.strip().lower() if language else None)
    except ValueError as error:
        err_console.print(f"[red]--language:[/] {error}", highlight=False)
        raise typer.Exit(2) from error
    try:
        plan, skipped = plan_uploads(paths, settings.drop_prefix, follow_links=follow_links)
    except FileNotFoundError as error:
        err_console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    hidden = [s for s in skipped if s.reason.startswith("hidden")]
    if hidden:
        err_console.print(f"[dim]{len(hidden)} hidden files and folders skipped[/]")
    for left_out in skipped:
        if left_out not in hidden:
            err_console.print(f"[yellow]skipped[/] {left_out.path}: {left_out.reason}", highlight=False)
    if not plan:
        err_console.print("[yellow]nothing to ingest[/]")
        raise typer.Exit(0)
    services = local_services(settings)
    with Progress(
        TextColumn("[bold]uploading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("upload", total=len(plan))
        not_uploaded: list[Skipped] = []
        uploaded = upload(
            services,
            plan,
            on_uploaded=lambda _: progress.advance(task),
            on_failed=not_uploaded.append,
            options=options,
        )
    err_console.print(f"uploaded {len(uploaded)} files to s3://{settings.drop_bucket}/{settings.drop_prefix}")
    for miss in not_uploaded:
        err_console.print(f"[red]not uploaded[/] {miss.path}: {miss.reason}", highlight=False)
    asset_ids = [u.asset_id for u in uploaded]

    if settings.profile is Profile.EMBEDDED or _emulated(settings):
        from medialens.local.runtime import LocalRuntime, RuntimeBusyError

        if not wait:
            if settings.profile is Profile.EMBEDDED:
                _spawn_background_runner(settings)
                err_console.print("analysis runs in the background; follow it with [bold]medialens status[/]")
            else:
                err_console.print("queued; a [bold]medialens worker[/] process analyses them")
            raise typer.Exit(1 if not_uploaded else 0)
        try:
            with LocalRuntime(settings) as runtime:
                assets = _wait_with_progress(runtime.wait_for, asset_ids, timeout)
        except RuntimeBusyError:
            err_console.print("[dim]another medialens process runs the pipeline; waiting for it[/]")
            assets = _wait_with_progress(_poll_registry(services), asset_ids, timeout)
    elif wait:
        assets = _wait_with_progress(_poll_registry(services), asset_ids, timeout)
    else:
        raise typer.Exit(1 if not_uploaded else 0)

    by_id = {a.asset_id: a for a in assets}
    if as_json:
        rows = [
            {
                "path": str(u.path),
                **(asset_row(by_id[u.asset_id]) if u.asset_id in by_id else {"asset_id": u.asset_id}),
            }
            for u in uploaded
        ]
        rows += [
            {"path": str(miss.path), "status": "NOT_UPLOADED", "error_reason": miss.reason} for miss in not_uploaded
        ]
        console.print_json(json.dumps({"results": rows}))
    else:
        for item in uploaded:
            console.print(_result_line(str(item.path), by_id.get(item.asset_id)), highlight=False, soft_wrap=True)
    failed = sum(1 for a in assets if a.status is AssetStatus.FAILED)
    unfinished = len(uploaded) - sum(1 for a in assets if a.status.terminal)
    if not as_json:
        ok = len(uploaded) - failed - unfinished
        err_console.print(f"{ok} succeeded, {failed} failed" + (f", {unfinished} unfinished" if unfinished else ""))
    raise typer.Exit(1 if failed or unfinished or not_uploaded else 0)


@app.command()
def remove(
    targets: Annotated[
        list[str], typer.Argument(help="Asset ids, or drop-bucket keys as `medialens status` lists them.")
    ],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Block until the index no longer has them.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most with --wait.")] = 600,
) -> None:
    """Delete files from the drop bucket: every analysed revision of each, with its moments and
    artifacts, leaves the index (exit code 2 if a target names nothing)."""
    settings = _settings()
    services = local_services(settings)
    uris: list[str] = []
    unknown: list[str] = []
    bucket_uri = f"s3://{settings.drop_bucket}/"
    for target in targets:
        asset = services.registry.get(target)
        uri = asset.source.uri if asset else bucket_uri + target.removeprefix(bucket_uri)
        if asset is not None or services.blobs.head(uri) is not None:
            uris.append(uri)
        else:
            unknown.append(target)
    for target in unknown:
        err_console.print(f"[red]no asset or drop-bucket object[/] {target}", highlight=False)
    removed = [uri for uri in dict.fromkeys(uris) if services.blobs.delete(uri)]
    err_console.print(f"removed {len(removed)} objects from s3://{settings.drop_bucket}/")
    if removed and settings.profile is Profile.EMBEDDED:
        if wait:
            _wait_for_admission(settings, timeout)
        elif not runner_active(settings):
            _spawn_background_runner(settings)
    raise typer.Exit(2 if unknown else 0)


@app.command()
def reprocess(
    asset_ids: Annotated[list[str] | None, typer.Argument(help="Asset ids as `medialens status` lists them.")] = None,
    stale: Annotated[
        bool,
        typer.Option(
            "--stale",
            help="Every finished asset an earlier pipeline version analysed (after an upgrade that "
            "changed a model, their moments answer keyword searches only).",
        ),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Block until the re-runs have finished.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most with --wait.")] = 3600,
) -> None:
    """Analyse finished assets again with the current pipeline; their old moments answer until the
    new run replaces them (exit code 2 if an asset could not be re-run)."""
    from medialens.operations import OperationError
    from medialens.operations import reprocess as start_reprocess

    settings = _settings()
    services = local_services(settings)
    wanted = list(dict.fromkeys(asset_ids or []))
    if stale:
        wanted += [
            asset.asset_id
            for asset in services.registry.iter_all()
            if asset.status.terminal and asset.pipeline_version != settings.pipeline_version
        ]
    if not wanted:
        err_console.print("nothing to re-run" + (" (no asset is stale)" if stale else ": name assets or use --stale"))
        raise typer.Exit(0 if stale else 2)
    started, refused = [], 0
    for asset_id in dict.fromkeys(wanted):
        try:
            started.append(start_reprocess(services, asset_id).asset)
        except OperationError as error:
            refused += 1
            err_console.print(f"[red]{asset_id}[/]: {error}", highlight=False)
    err_console.print(f"re-running {len(started)} assets under pipeline version {settings.pipeline_version}")
    if started and settings.profile is Profile.EMBEDDED:
        if wait:
            _wait_for_assets(settings, [asset.asset_id for asset in started], timeout)
        elif not runner_active(settings):
            _spawn_background_runner(settings)
    raise typer.Exit(2 if refused else 0)


def _wait_for_assets(settings: Settings, asset_ids: list[str], timeout_s: float) -> None:
    """Runs the embedded pipeline (or waits for the one running) until the assets have finished."""
    from medialens.local.runtime import LocalRuntime, RuntimeBusyError

    try:
        with LocalRuntime(settings) as runtime:
            runtime.wait_for(asset_ids, timeout_s=timeout_s)
    except RuntimeBusyError:
        registry, deadline = local_services(settings).registry, time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assets = [registry.get(asset_id) for asset_id in asset_ids]
            if all(asset is None or asset.status.terminal for asset in assets):
                return
            time.sleep(0.5)


def _wait_for_admission(settings: Settings, timeout_s: float) -> None:
    """Runs the embedded pipeline (or waits for the one running) until the outbox is settled."""
    from medialens.local.runtime import LocalRuntime, RuntimeBusyError

    try:
        with LocalRuntime(settings) as runtime:
            runtime.wait_until_idle(timeout_s)
    except RuntimeBusyError:
        outbox, deadline = drop_outbox(settings), time.monotonic() + timeout_s
        while outbox.pending_count() and time.monotonic() < deadline:
            time.sleep(0.5)


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="What was said or shown.")] = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=100, help="How many moments.")] = 10,
    mode: Annotated[SearchMode, typer.Option(help="keyword (BM25), semantic (k-NN) or hybrid.")] = SearchMode.HYBRID,
    media_type: Annotated[list[MediaType] | None, typer.Option("--media-type", help="Only these media types.")] = None,
    modality: Annotated[list[Modality] | None, typer.Option("--modality", help="Only these modalities.")] = None,
    asset: Annotated[list[str] | None, typer.Option("--asset", help="Only these asset ids.")] = None,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="Only moments said or written in these languages (sv).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
    voice: Annotated[
        Path | None,
        typer.Option("--voice", help="Ask out loud: a recording (WAV, MP3, WebM, ...) of the question.", exists=True),
    ] = None,
    question_language: Annotated[
        str | None,
        typer.Option(help="The spoken question's language (e.g. en): skips detecting it, about half the time."),
    ] = None,
) -> None:
    """Find the moments that match a query, typed or spoken (--voice)."""
    settings = _settings()
    heard = None
    if voice is not None:
        if query:
            err_console.print("[red]give a query or --voice, not both[/]")
            raise typer.Exit(2)
        from medialens.voice import hear

        try:
            heard = hear(settings, voice.read_bytes(), suffix=voice.suffix, language=question_language)
        except InvalidMediaError as error:
            err_console.print(f"[red]{error}[/]")
            raise typer.Exit(2) from error
        if not heard.text:
            err_console.print("[yellow]no speech heard in the recording[/]")
            raise typer.Exit(1)
        query = heard.text
        if not as_json:
            err_console.print(f"heard: [bold]{heard.text}[/] [dim]({heard.language}, {heard.took_ms:.0f} ms)[/]")
    if not query:
        err_console.print("[red]give a query, or --voice with a recording of one[/]")
        raise typer.Exit(2)
    filters = SearchFilters(
        media_types=media_type or None,
        modalities=modality or None,
        asset_ids=asset or None,
        languages=[code.lower() for code in language] if language else None,
    )
    hits, took_ms, answered_by = _search(settings, SearchQuery(text=query, mode=mode, k=k, filters=filters))
    if as_json:
        answer: dict[str, object] = {"query": query, "mode": mode.value, "took_ms": round(took_ms, 2)}
        if heard is not None:
            answer["heard"] = heard.model_dump(mode="json")
        answer |= {"answered_by": answered_by, "hits": [hit.model_dump(mode="json") for hit in hits]}
        print(json.dumps(answer))
        return
    if not hits:
        console.print("[yellow]no matching moments[/]")
        return
    table = Table(title=f"{query!r} ({mode.value}, {took_ms:.0f} ms)", show_lines=True)
    for column in ("score", "source", "where", "text"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        if hit.start is not None:
            where = f"{hit.start:.1f}-{hit.end if hit.end is not None else hit.start:.1f}s"
        else:
            where = f"page {hit.page}" if hit.page else "-"
        text = hit.text if len(hit.text) < 240 else hit.text[:237] + "…"
        table.add_row(f"{hit.score:.3f}", hit.source.rsplit("/", 1)[-1], f"{hit.modality}\n{where}", text)
    console.print(table)
    if answered_by != IN_PROCESS:
        err_console.print(f"[dim]answered by medialens serve at {answered_by}[/]")


IN_PROCESS = "this process"


class PrintedHit(BaseModel):
    """A hit as `medialens search` prints it, whoever answered."""

    asset_id: str
    source: str
    media_type: str
    modality: str
    start: float | None
    end: float | None
    page: int | None
    language: str | None
    text: str
    score: float


def _search(settings: Settings, request: SearchQuery) -> tuple[list[PrintedHit], float, str]:
    """The hits, the search's own milliseconds, and who answered: a running ``medialens serve``
    for this home when there is one (its index is open and its models are loaded: milliseconds
    instead of the seconds a cold process spends), else this process."""
    from medialens.local.announce import ServerUnavailableError, ask, running_server

    fields = list(PrintedHit.model_fields)
    url = running_server(settings.home) if settings.profile is Profile.EMBEDDED else None
    if url is not None:
        body: dict[str, object] = {"query": request.text, "mode": request.mode.value, "k": request.k}
        body["filters"] = request.filters.model_dump(mode="json", exclude_none=True)
        try:
            page = ask(url, "/api/search", body)
            hits = [PrintedHit.model_validate({f: hit.get(f) for f in fields}) for hit in page["hits"]]
            return hits, float(page["took_ms"]), url
        except (ServerUnavailableError, ValidationError, KeyError, TypeError, AttributeError):
            pass  # gone, or not a medialens answer: search here
    response = local_services(settings).search.search(request)
    hits = [PrintedHit.model_validate({f: getattr(hit, f) for f in fields}) for hit in response.hits]
    if settings.profile is Profile.EMBEDDED and settings.search_server_idle_s > 0 and _spawn_search_server(settings):
        err_console.print(
            f"[dim]started a search server for {settings.home} in the background: the next searches ask it "
            f"(it stops after {settings.search_server_idle_s:g} s without one; "
            "MEDIALENS_SEARCH_SERVER_IDLE_S=0 starts none)[/]"
        )
    return hits, response.took_ms, IN_PROCESS


@app.command()
def speak(
    text: Annotated[str, typer.Argument(help="What to say.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Audio file to write (.wav or .mp3).")],
    language: Annotated[
        str | None, typer.Option(help="Language of the text (default: the voice's own); others use espeak-ng.")
    ] = None,
) -> None:
    """Say a text with the narration voice and write the audio."""
    from medialens.voice import finished_wav
    from medialens.voice import speak as speak_text

    settings = _settings()
    audio_format = "mp3" if output.suffix.lower() == ".mp3" else "wav"
    started = time.perf_counter()
    try:
        data = b"".join(speak_text(settings, text, language=language, audio_format=audio_format))
    except (InvalidMediaError, ConfigurationError) as error:
        err_console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    if audio_format == "wav":
        data = finished_wav(data)
    output.write_bytes(data)
    err_console.print(f"wrote {output} [dim]({len(data) / 1024:.0f} KiB, {time.perf_counter() - started:.1f}s)[/]")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise typer.BadParameter("a number and a unit: 90m, 24h, 7d or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@app.command()
def report(
    since: Annotated[str, typer.Option(help="How far back: 90m, 24h, 7d, 2w.")] = "24h",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the HTML page here (one file, opens offline).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    prices: Annotated[
        Path | None, typer.Option(help="A JSON file overriding entries of the price table (medialens.insight.prices).")
    ] = None,
) -> None:
    """Operations report: throughput, latency per stage, model errors and confidence, drift
    against the reference window, and cost per item, with charts."""
    from medialens.insight.html import render_html
    from medialens.insight.prices import DEFAULT_PRICES, Prices
    from medialens.insight.report import build_report
    from medialens.local.metric_store import sampled

    window = _duration(since)
    table = DEFAULT_PRICES
    if prices is not None:
        table = Prices.model_validate(DEFAULT_PRICES.model_dump() | json.loads(prices.read_text(encoding="utf-8")))
    services = local_services(_settings())
    until = utcnow()
    samples = sampled(services.settings, until - window, until)
    figures = build_report(services.registry.iter_all(), until - window, until, prices=table, samples=samples)
    if as_json:
        print(figures.model_dump_json(indent=1))
    if output is not None:
        output.write_text(render_html(figures), encoding="utf-8")
        err_console.print(f"wrote {output} ({output.stat().st_size // 1024} KiB)")
    if not as_json:
        cost = figures.cost
        err_console.print(
            f"{figures.assets} assets since {figures.since:%Y-%m-%d %H:%M} UTC: "
            f"{figures.media_minutes:.1f} media minutes, "
            + (
                f"{figures.media_minutes_per_wall_minute:.2f} per wall minute, "
                if figures.media_minutes_per_wall_minute
                else ""
            )
            + (f"${cost.per_media_hour_usd:.3f} per media hour, " if cost.per_media_hour_usd else "")
            + f"${cost.total_usd:.4f} in all"
        )
        for score in figures.alarms:
            err_console.print(
                f"[red]drift: {score.signal} ({score.model or 'mix'}) "
                f"{score.statistic} {score.score:g} > {score.threshold:g}[/]"
            )


@app.command()
def status(
    asset_id: Annotated[str | None, typer.Argument(help="One asset (default: all).")] = None,
    only: Annotated[AssetStatus | None, typer.Option("--status", help="Only assets in this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every asset with its source, media type, status, error reason and timings."""
    from medialens.local.announce import running_server
    from medialens.operations import stall_reason

    settings = _settings()
    services = local_services(settings)
    if asset_id:
        asset = services.registry.get(asset_id)
        if asset is None:
            err_console.print(f"[red]no asset {asset_id}[/]")
            raise typer.Exit(2)
        row = asset_row(asset) | {"events": [e.model_dump(mode="json") for e in services.registry.events(asset_id)]}
        row["artifacts"] = asset.artifacts
        # The spoken language decided before transcription (with its windows), and what the moments hold.
        moments = Counter(m.language or "unknown" for m in services.index.asset_moments(asset_id, limit=10_000))
        row["languages"] = {"spoken": asset.metadata.get("spoken_language"), "moments": dict(moments.most_common())}
        print(json.dumps(row, indent=None if as_json else 2))
        return
    assets = services.registry.iter_all(status=only)
    waiting = [a for a in assets if not a.status.terminal]
    embedded = settings.profile is Profile.EMBEDDED
    unadmitted = drop_outbox(settings).pending_count() if embedded else 0
    # Embedded, work only moves while a runner holds the lock: say so when none does.
    alive = runner_active(settings) if embedded and (waiting or unadmitted) else None
    stalled = alive is False
    server = running_server(settings.home) if embedded else None
    if as_json:
        report = summary(assets) | {
            "search_server": server,
            "uploads_not_admitted": unadmitted,
            "waiting_without_runner": len(waiting) + unadmitted if stalled else 0,
            "stale_assets": sum(a.status.terminal and a.pipeline_version != settings.pipeline_version for a in assets),
        }
        print(json.dumps({"assets": [asset_row(a) for a in assets], "summary": report}))
        return
    now = utcnow()
    table = Table(title=f"{len(assets)} assets in {settings.home}" if settings.profile is Profile.EMBEDDED else None)
    for column in ("asset", "source", "type", "status", "moments", "seconds", "reason / stage"):
        table.add_column(column, overflow="fold")
    for asset in assets:
        style = STATUS_STYLE.get(asset.status.value, "white")
        note = asset.error_reason if asset.status is AssetStatus.FAILED else (asset.stage or "")
        stall = stall_reason(services, asset, now, alive)
        if stall:
            note = f"{note + ': ' if note else ''}{stall}"
        table.add_row(
            asset.asset_id,
            asset.source.key,
            asset.media_type.value if asset.media_type else "-",
            f"[{style}]{asset.status.value}[/]",
            str(asset.moment_count),
            f"{asset.elapsed_seconds:.1f}",
            note or "",
        )
    console.print(table)
    if unadmitted:
        err_console.print(f"{unadmitted} uploads are not admitted yet")
    if server:
        err_console.print(f"[dim]medialens serve answers searches for this home at {server}[/]")
    if stalled:
        err_console.print(
            f"[yellow]{len(waiting) + unadmitted} uploads and assets are waiting and no runner is processing "
            "them: run [bold]medialens worker --until-idle[/] (or [bold]medialens serve[/])"
        )
    stale = [a for a in assets if a.status.terminal and a.pipeline_version != settings.pipeline_version]
    if stale:
        err_console.print(
            f"[yellow]{len(stale)} assets were analysed by an earlier pipeline version (after a change of "
            "text embedding model, semantic search skips their moments): [bold]medialens reprocess --stale[/]"
        )
    metrics = summary(assets)
    console.print(
        "by status: "
        + ", ".join(f"{k} {v}" for k, v in sorted(metrics["by_status"].items()))
        + (f" | failures: {metrics['failures_by_code']}" if metrics["failures_by_code"] else "")
    )


@app.command()
def worker(
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit once nothing is left to do.")] = False,
    light_workers: Annotated[int, typer.Option(min=1, help="Concurrent light-step pollers.")] = 2,
) -> None:
    """Run the pipeline's workers (and, in the embedded profile, its orchestration)."""
    from medialens.local.runtime import LocalRuntime, RuntimeBusyError, work_pending

    settings = _settings()
    while True:
        try:
            runtime = LocalRuntime(settings, light_workers=light_workers).start()
            break
        except RuntimeBusyError as error:
            # The runner holding the lock may be on its way out (it found nothing to do a moment
            # ago): a runner started for pending work waits for it rather than leave the work.
            if not until_idle or not work_pending(local_services(settings), drop_outbox(settings)):
                err_console.print(f"[yellow]{error}[/]")
                raise typer.Exit(0) from error
            time.sleep(1.0)
    try:
        if until_idle:
            runtime.wait_until_idle()
        else:
            err_console.print("workers running; Ctrl-C to stop")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()


@models_app.command("build")
def models_build(
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            "-n",
            help="Models to build (default: the configured text embedders, speech model, voice and image labeller).",
        ),
    ] = None,
    quantization: Annotated[
        list[str] | None, typer.Option("--quantization", "-q", help="Only these quantizations (default: all).")
    ] = None,
) -> None:
    """Build models from packaged weights into the model cache (skipped when already verified)."""
    from medialens.ml.store.store import ModelStore

    settings = _settings()
    store = ModelStore(settings.models_dir)
    configured = [
        settings.text_embedding_model,
        settings.english_embedding_model,
        settings.speech_model,
        settings.tts_voice,
        settings.visual_label_model,
    ]
    for model in name or [m for m in configured if m]:
        for quant in store.spec(model).quantizations:
            if quantization and quant not in quantization:
                continue
            started = time.perf_counter()
            artifact = store.resolve(model, quant)
            size = sum(f.stat().st_size for f in artifact.path.iterdir() if f.is_file())
            err_console.print(
                f"[green]✓[/] {artifact.manifest.model_id}  {size / 2**20:.1f} MiB  "
                f"[dim]{artifact.path} ({time.perf_counter() - started:.1f}s)[/]"
            )


@models_app.command("import")
def models_import(
    folder: Annotated[Path, typer.Argument(help="A model folder (a CLIP export, or a copied store folder).")],
    name: Annotated[
        str | None, typer.Option(help="Store it under this name (default: its manifest's, else the folder's name).")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Version to record (default: from its manifest, or 1).")] = None,
) -> None:
    """Add a model you supply (e.g. CLIP-style image/text encoders) to the store, checked by running it."""
    from medialens.ml.store.importing import import_model_folder
    from medialens.ml.store.store import ModelStore

    store = ModelStore(_settings().models_dir)
    if name is None and not (folder / "manifest.json").is_file():
        name = folder.name
    artifact = import_model_folder(store, folder, name=name, version=version)
    err_console.print(f"[green]✓[/] {artifact.manifest.model_id}  [dim]{artifact.path}[/]")


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print manifests as JSON.")] = False) -> None:
    """Models in the cache, with their manifests (name, version, quantization, sha256)."""
    from medialens.ml.store.store import ModelStore

    manifests = ModelStore(_settings().models_dir).list()
    if as_json:
        print(json.dumps([m.model_dump(mode="json") for m in manifests], indent=2))
        return
    table = Table()
    for column in ("model", "quantization", "dimensions", "source", "files"):
        table.add_column(column, overflow="fold")
    for manifest in manifests:
        files = "\n".join(f"{name} {digest[:12]}" for name, digest in manifest.files.items())
        table.add_row(
            f"{manifest.name}@{manifest.version}",
            manifest.quantization,
            str(manifest.dimensions),
            manifest.source,
            files,
        )
    console.print(table)


@local_app.command("provision")
def local_provision() -> None:
    """Create the pipeline's queues, state machine, buckets, table and event rule at AWS_ENDPOINT_URL."""
    from medialens.orchestration.provision import provision

    settings = _settings()
    if not _emulated(settings):
        err_console.print("[red]set AWS_ENDPOINT_URL to an AWS emulator (LocalStack, moto server) first[/]")
        raise typer.Exit(2)
    resources = provision(settings, storage=True)
    print(json.dumps({"state_machine_arn": resources.state_machine_arn, "queues": resources.queue_urls}, indent=2))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (keep 127.0.0.1 unless you mean it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8765,
    pipeline: Annotated[
        bool, typer.Option("--pipeline/--no-pipeline", help="Run the pipeline's workers here when none runs.")
    ] = True,
    web_dir: Annotated[
        Path | None, typer.Option(help="The web page's folder (default: web/ of this checkout).")
    ] = None,
    idle_exit: Annotated[
        float, typer.Option(min=0, help="Stop after this many seconds without a request (0: never).")
    ] = 0.0,
) -> None:
    """Serve the search API (the Lambda's resolver), the web page and the media on localhost."""
    import signal
    import threading

    from medialens.local.announce import server_started
    from medialens.local.server import LocalServer

    settings = _settings()
    # Warm: the index open and the query models loaded before the server is announced.
    server = LocalServer(settings, host=host, port=port, web_dir=web_dir, run_pipeline=pipeline, warm_search=True)
    try:
        server.start()
    except (FileNotFoundError, OSError) as error:
        err_console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    finally:
        server_started(settings.home)
    err_console.print(
        f"medialens on [bold]{server.url}[/]  (API at {server.url}api/, {server.pipeline_note}); Ctrl-C stops"
    )
    stopping = threading.Event()
    # SIGTERM (a supervisor, `kill`) stops as cleanly as Ctrl-C: workers finish, locks are released.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.wait(1.0):
            if idle_exit and server.idle_s > idle_exit:
                err_console.print(f"no request for {idle_exit:g} s: stopping")
                break
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    app()
