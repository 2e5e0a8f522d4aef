"""Writes the search API's OpenAPI document to docs/openapi.json (or checks it is current).

    .venv/bin/python scripts/export_openapi.py           # rewrite docs/openapi.json
    .venv/bin/python scripts/export_openapi.py --check   # exit 1 if it differs from the code

The document comes from the API resolver itself (``app.get_openapi_json_schema()``); a test fails
when the committed copy drifts from it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write (default: docs/openapi.json)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)

    from medialens.api.app import openapi_document

    text = render(openapi_document())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run scripts/export_openapi.py", file=sys.stderr)
            return 1
        print(f"{args.out} is current")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
