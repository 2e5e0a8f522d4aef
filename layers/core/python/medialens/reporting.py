"""Status views shared by the CLI and the API: per-asset rows and pipeline metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from medialens.domain.assets import Asset


def asset_row(asset: Asset) -> dict[str, Any]:
    return {
        "asset_id": asset.asset_id,
        "source": asset.source.uri,
        "media_type": asset.media_type.value if asset.media_type else None,
        "status": asset.status.value,
        "stage": asset.stage,
        "error_code": asset.error_code,
        "error_reason": asset.error_reason,
        "moments": asset.moment_count,
        "size": asset.source.size,
        "created_at": asset.created_at.isoformat(),
        "updated_at": asset.updated_at.isoformat(),
        "seconds": round(asset.elapsed_seconds, 3),
        "timings": {stage: round(s, 3) for stage, s in asset.stage_seconds().items()},
    }


def summary(assets: Sequence[Asset]) -> dict[str, Any]:
    """Counts by status, failures by error code, and stage latency percentiles."""
    stage_samples: dict[str, list[float]] = {}
    for asset in assets:
        for stage, seconds in asset.stage_seconds().items():
            stage_samples.setdefault(stage, []).append(seconds)
    stages = {
        stage: {
            "count": len(samples),
            "p50_s": round(float(np.percentile(samples, 50)), 4),
            "p95_s": round(float(np.percentile(samples, 95)), 4),
            "total_s": round(float(np.sum(samples)), 4),
        }
        for stage, samples in sorted(stage_samples.items())
    }
    return {
        "total": len(assets),
        "by_status": dict(Counter(a.status.value for a in assets)),
        "failures_by_code": dict(Counter(a.error_code or "unknown" for a in assets if a.status.value == "FAILED")),
        "moments": sum(a.moment_count for a in assets),
        "stages": stages,
    }
