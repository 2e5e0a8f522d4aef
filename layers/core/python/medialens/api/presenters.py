"""Domain objects → API models: file names, browser links, snippets, paging of search results."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from medialens.api.links import Links
from medialens.api.models import (
    MAX_SEARCH_WINDOW,
    ArtifactLink,
    AssetDetail,
    AssetSummary,
    AuditEventView,
    Highlight,
    MomentHit,
    MomentView,
    SearchPage,
    SearchRequest,
    StageTimingView,
)
from medialens.api.paging import decode_cursor, encode_cursor
from medialens.api.snippets import query_terms, snippet
from medialens.domain.assets import Asset, AuditEvent, MediaType
from medialens.domain.moments import Moment
from medialens.domain.search import SearchFilters, SearchHit, SearchQuery
from medialens.search import SearchService


def file_name(uri: str) -> str:
    return posixpath.basename(uri.rstrip("/")) or uri


def _is_pdf(uri: str) -> bool:
    return uri.lower().endswith(".pdf")


def open_url(media_url: str | None, hit: SearchHit) -> str | None:
    """The link that opens the source at the moment: a PDF viewer's #page=N, or a W3C media
    fragment (#t=start) that players seek to."""
    if media_url is None:
        return None
    if hit.media_type in (MediaType.VIDEO, MediaType.AUDIO) and hit.start is not None:
        return f"{media_url}#t={hit.start:.3f}"
    if hit.page is not None and _is_pdf(hit.source):
        return f"{media_url}#page={hit.page}"
    return media_url


Thumbnails = Callable[[SearchHit], str | None]


def shown(view: type[BaseModel], moment: Moment) -> dict[str, Any]:
    """The fields of ``moment`` (a hit: with its score) that the API shape ``view`` shows."""
    return moment.model_dump(include=view.model_fields.keys() & type(moment).model_fields.keys())


def hit_view(hit: SearchHit, terms: frozenset[str], links: Links, thumbnails: Thumbnails | None = None) -> MomentHit:
    text, spans = snippet(hit.text, terms)
    media_url = links.url(hit.source)
    # An image is its own thumbnail; a video moment's is its keyframe, when one was stored.
    keyframe = thumbnails(hit) if thumbnails is not None and hit.media_type is MediaType.VIDEO else None
    thumbnail = media_url if hit.media_type is MediaType.IMAGE else keyframe
    return MomentHit(
        **shown(MomentHit, hit),
        file_name=file_name(hit.source),
        snippet=text,
        highlights=[Highlight(start=start, end=end) for start, end in spans],
        media_url=media_url,
        open_url=open_url(media_url, hit),
        thumbnail_url=thumbnail,
        narration_url=links.url(hit.narration_uri) if hit.narration_uri else None,
    )


def search_page(
    service: SearchService, request: SearchRequest, links: Links, thumbnails: Thumbnails | None = None
) -> SearchPage:
    """One page of a search: the query runs to the page's depth and the page is cut from it.

    Keyword and semantic rankings at a greater depth begin with the shallower one, so pages
    follow on; hybrid fuses a candidate pool that grows with depth, so a later page may repeat
    or skip a moment whose fused rank moved across the page boundary.
    """
    offset = decode_cursor(request.cursor, request) if request.cursor else 0
    depth = min(offset + request.k, MAX_SEARCH_WINDOW)
    filters = SearchFilters(
        media_types=request.filters.media_types or None,
        modalities=request.filters.modalities or None,
        asset_ids=request.filters.asset_ids or None,
        languages=request.filters.languages or None,
    )
    if offset >= depth:
        hits: Sequence[SearchHit] = []
        took_ms = 0.0
        more = False
    else:
        response = service.search(SearchQuery(text=request.query, mode=request.mode, k=depth, filters=filters))
        hits = response.hits[offset:depth]
        took_ms = response.took_ms
        # A full page that stops short of the window may have more behind it.
        more = len(response.hits) >= depth and depth < MAX_SEARCH_WINDOW
    terms = query_terms(request.query)
    return SearchPage(
        query=request.query,
        mode=request.mode,
        k=request.k,
        offset=offset,
        hits=[hit_view(hit, terms, links, thumbnails) for hit in hits],
        next_cursor=encode_cursor(offset + len(hits), request) if more and hits else None,
        took_ms=round(took_ms, 3),
    )


def asset_summary(asset: Asset, links: Links, stalled: str | None = None) -> AssetSummary:
    return AssetSummary(
        asset_id=asset.asset_id,
        source=asset.source.uri,
        file_name=file_name(asset.source.key),
        media_type=asset.media_type,
        status=asset.status,
        stage=asset.stage,
        error_code=asset.error_code,
        error_reason=asset.error_reason,
        moment_count=asset.moment_count,
        size=asset.source.size,
        created_at=asset.created_at,
        updated_at=asset.updated_at,
        seconds=round(asset.elapsed_seconds, 3),
        media_url=links.url(asset.source.uri),
        stalled=stalled,
        warnings=list(asset.warnings),
    )


def asset_detail(
    asset: Asset,
    links: Links,
    *,
    events: Sequence[AuditEvent],
    moments: Sequence[Moment],
    moments_indexed: int,
    stalled: str | None = None,
) -> AssetDetail:
    summary = asset_summary(asset, links, stalled)
    return AssetDetail(
        **summary.model_dump(),
        etag=asset.source.etag,
        version_id=asset.source.version_id,
        pipeline_version=asset.pipeline_version,
        execution_name=asset.execution_name,
        metadata=asset.metadata,
        timings=[StageTimingView(stage=t.stage, started_at=t.started_at, ended_at=t.ended_at) for t in asset.timings],
        stage_seconds={stage: round(seconds, 3) for stage, seconds in asset.stage_seconds().items()},
        artifacts=[
            ArtifactLink(name=name, uri=uri, url=links.url(uri)) for name, uri in sorted(asset.artifacts.items())
        ],
        events=[AuditEventView(kind=e.kind, detail=e.detail, at=e.at) for e in events],
        moments_indexed=moments_indexed,
        moments=[MomentView(**shown(MomentView, m)) for m in moments],
    )
