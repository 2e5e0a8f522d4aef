"""``medialens serve``: the search API, the web page and the stored media on one local port.

* ``/api/...``: each request goes through ``LocalApiGateway`` to the Lambda handler itself, so
  the local API is the deployed one.
* ``/files/<bucket>/<key>``: blobs of the embedded profile, with byte ranges so players seek.
* everything else: the static page in ``web/``.

The pipeline's workers run in this process too (embedded profile) when no other process holds
the runner lock, so ingests, re-runs and deletes made from the page complete while it is open.

Binding is to 127.0.0.1 by default. Requests must name this server in their Host header (no DNS
rebinding) and a state-changing request from a page of another origin is refused, so a web site
open in the same browser cannot drive the API.
"""

from __future__ import annotations

import itertools
import json
import logging
import mimetypes
import re
import tempfile
import threading
import time
from datetime import timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import ValidationError

from medialens.adapters.storage.base import join_uri
from medialens.adapters.storage.filesystem import FilesystemBlobStore
from medialens.admission import asset_id_of
from medialens.api.errors import error_body
from medialens.api.links import LOCAL_FILES_PATH
from medialens.api.models import SpeechRequest
from medialens.domain.assets import utcnow
from medialens.errors import MediaLensError
from medialens.insight.html import render_html
from medialens.insight.report import build_report
from medialens.local.announce import announce, withdraw
from medialens.local.api_gateway import LocalApiGateway
from medialens.local.metric_store import MetricStore, metric_store_path, sampled
from medialens.local.runtime import LocalRuntime, RuntimeBusyError, configure_local_process
from medialens.local.wiring import local_services
from medialens.observability import set_local_sink
from medialens.services import Services, set_services
from medialens.settings import Profile, Settings
from medialens.uploads.exceptions import UnsupportedUploadError, UploadError, UploadTooLargeError
from medialens.uploads.server import METADATA_HEADER, SERVER_UPLOAD_PATH, ServerUploadDesk
from medialens.voice import SPEECH_CONTENT_TYPES, speak

log = logging.getLogger(__name__)

API_PREFIX = "/api"
MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit
CHUNK = 256 * 1024
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# Browsers download text/markdown instead of showing it; these are shown as plain text.
PLAIN_TEXT_EXTENSIONS = {".md", ".markdown", ".txt", ".text", ".log", ".csv"}
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
ASSET_VIEW = re.compile(r"^/assets/[A-Za-z0-9_-]{1,128}$")
# The Operations view, and the report page it frames (drawn here: matplotlib is a local extra).
OPERATIONS_VIEW = "/operations"
OPERATIONS_REPORT_PATH = "/operations/report.html"
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def default_web_dir() -> Path:
    """``web/`` of the source checkout this package was installed from (editable install)."""
    return Path(__file__).resolve().parents[5] / "web"


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``bytes=`` range; None when it cannot be satisfied.
    Raises ValueError for a header this server does not honour (several ranges, other units)."""
    match = RANGE.match(header.strip())
    if not match:
        raise ValueError(header)
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        raise ValueError(header)
    if not first_text:  # a suffix: the last N bytes
        length = int(last_text)
        if length == 0 or size == 0:
            return None
        return max(0, size - length), size - 1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or last < first:
        return None
    return first, last


class LocalServer:
    """The serve process's HTTP server (and, embedded, its pipeline runtime)."""

    def __init__(
        self,
        settings: Settings,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        web_dir: Path | None = None,
        run_pipeline: bool = True,
        warm_search: bool = False,
    ) -> None:
        self.settings = settings
        self.warm_search = warm_search
        self.last_request_at = time.monotonic()
        self.host = host
        self.requested_port = port
        self.web_dir = (web_dir or default_web_dir()).resolve()
        self.run_pipeline = run_pipeline
        self.runtime: LocalRuntime | None = None
        self.services: Services | None = None
        self.pipeline_note = ""
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._metrics: MetricStore | None = None
        # API requests go through it one at a time; media and static files are served concurrently.
        self.gateway = LocalApiGateway(settings.region)

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> LocalServer:
        if not (self.web_dir / "index.html").is_file():
            raise FileNotFoundError(f"no web page at {self.web_dir}; pass --web-dir")
        configure_local_process(self.settings)
        if self.settings.profile is Profile.EMBEDDED and self.run_pipeline:
            try:
                self.runtime = LocalRuntime(self.settings).start()  # installs its services
                self.services = self.runtime.services
                self.pipeline_note = "the pipeline runs in this process"
            except RuntimeBusyError:
                self.pipeline_note = "another medialens process runs the pipeline"
        if self.services is None:
            self.services = local_services(self.settings)
            set_services(self.services)
            if not self.pipeline_note:
                self.pipeline_note = "no pipeline in this process"
            # Without a runtime, the API's own metrics (latency per route) still go to the store.
            self._metrics = MetricStore(metric_store_path(self.settings))
            set_local_sink(self._metrics)
        if self.warm_search:
            self._warm_search()
        self._httpd = ThreadingHTTPServer((self.host, self.requested_port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="medialens-serve", daemon=True)
        self._thread.start()
        announce(self.settings.home, self.url)  # `medialens search` in another process asks here
        self.last_request_at = time.monotonic()
        return self

    @property
    def idle_s(self) -> float:
        """Seconds since the last request (or since the server started)."""
        return time.monotonic() - self.last_request_at

    def _warm_search(self) -> None:
        """One hybrid search before the server is announced: the index opened and the query
        models loaded, so the first question a client asks is answered warm."""
        from medialens.domain.search import SearchMode, SearchQuery

        assert self.services is not None
        started = time.perf_counter()
        try:
            self.services.search.search(SearchQuery(text="warm up", mode=SearchMode.HYBRID, k=1))
        except Exception:  # an empty or missing index: the first real question finds out
            log.info("search warm-up failed", exc_info=True)
        log.info("search warmed in %.2f s", time.perf_counter() - started)

    def stop(self) -> None:
        withdraw(self.settings.home)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        else:
            set_services(None)
        if self._metrics is not None:
            set_local_sink(None)
            self._metrics.close()
            self._metrics = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- requests ------------------------------------------------------------------------

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    def host_allowed(self, host: str) -> bool:
        """On a loopback address, only Host headers that name it (a page of another site that
        rebinds its DNS name to 127.0.0.1 sends its own name). Bound wider on purpose, the
        server is reached under names it cannot know."""
        if not self.loopback:
            return True
        return host in {f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]")}

    def blob_path(self, bucket: str, key: str) -> Path | None:
        """The file behind /files/<bucket>/<key>, for the pipeline's own buckets only."""
        assert self.services is not None
        blobs = self.services.blobs
        if not isinstance(blobs, FilesystemBlobStore):
            return None  # on S3 the API hands out presigned URLs instead
        if bucket not in (self.settings.drop_bucket, self.settings.artifacts_bucket):
            return None
        try:
            path = blobs.path_for(f"s3://{bucket}/{key}")
        except ValueError:
            return None
        return path if path.is_file() else None

    def content_security_policy(self) -> str:
        # Media and artifacts come from this server locally, from S3 (or an emulator) otherwise;
        # uploads go there too.
        media = "'self'" if self.settings.profile is Profile.EMBEDDED else "'self' http: https:"
        return (
            f"default-src 'self'; img-src {media} data:; media-src {media}; frame-src {media}; connect-src {media}; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(_RequestHandler):
            owner = server

        return Handler


class _RequestHandler(BaseHTTPRequestHandler):
    owner: LocalServer
    protocol_version = "HTTP/1.1"
    server_version = "medialens"
    # Small responses go out at once: with Nagle's algorithm on, a keep-alive client waits ~40 ms
    # for each one (the delayed ACK of its previous request).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # --- responses -----------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(error_body(status, code, message)).encode()
        self.close_connection = True  # a request body this server did not read must not linger
        self._send(status, body, "application/json", headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the standard library answers by itself (a malformed request line, a header too
        long, a method it has no handler for) in the one JSON error shape, never as HTML."""
        if code == HTTPStatus.NOT_IMPLEMENTED:  # TRACE, CONNECT, or a made-up method
            allowed = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
            self._error(
                HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", message or "method not allowed", {"Allow": allowed}
            )
            return
        status = HTTPStatus(code)
        self._error(status, status.phrase.lower().replace(" ", "_").replace("-", "_"), message or status.description)

    def _content_length(self) -> int | None:
        """The declared body length, or None (answered 400) when it is not a plain number."""
        declared = self.headers.get("Content-Length")
        if declared is None:
            return 0
        if not declared.strip().isdigit():
            self._error(HTTPStatus.BAD_REQUEST, "bad_content_length", "Content-Length must be a number of bytes")
            return None
        return int(declared)

    # --- dispatch ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self.owner.last_request_at = time.monotonic()
        try:
            if not self.owner.host_allowed(self.headers.get("Host", "")):
                self._error(HTTPStatus.MISDIRECTED_REQUEST, "unknown_host", "this server answers to its own name only")
                return
            path = urlsplit(self.path).path
            if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                self._api()
            elif path.startswith(LOCAL_FILES_PATH + "/"):
                self._file(path)
            elif path.startswith(SERVER_UPLOAD_PATH + "/"):
                self._upload(path)
            elif path == OPERATIONS_REPORT_PATH:
                self._operations_report()
            else:
                self._static(path)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser gave up on a response (players abort range requests all the time)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _read_only(self) -> bool:
        if self.command in ("GET", "HEAD"):
            return True
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", "only GET and HEAD", {"Allow": "GET, HEAD"})
        return False

    def _api(self) -> None:
        if self.command not in ("GET", "HEAD", "OPTIONS") and self._refused_cross_site():
            return
        length = self._content_length()
        if length is None:
            return
        if length > MAX_BODY_BYTES:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", "the request body is too large")
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        if self.command == "POST" and parts.path.rstrip("/") == API_PREFIX + "/speech" and self._stream_speech(body):
            return
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name, []).append(value)
        response = self.owner.gateway.request(
            "GET" if self.command == "HEAD" else self.command,
            unquote(parts.path[len(API_PREFIX) :]) or "/",
            parts.query,
            headers,
            body,
            source_ip=self.client_address[0],
        )
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _refused_cross_site(self) -> bool:
        """A browser names the page's origin on state-changing requests: it must be this server
        (answered 403 here when it is not)."""
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
            self._error(HTTPStatus.FORBIDDEN, "cross_origin", "requests from other sites are refused")
            return True
        return False

    def _upload(self, path: str) -> None:
        """PUT /upload/<file name>: the page's upload, streamed into the drop bucket under
        ``incoming/uploads/`` (the drop bucket's outbox then admits it like any other object)."""
        if self.command != "PUT":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", "uploads are PUT", {"Allow": "PUT"})
            return
        if self._refused_cross_site():
            return
        services = self.owner.services
        if services is None:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "not_ready", "the server is starting")
            return
        length = self._content_length()
        if length is None:
            return
        desk = ServerUploadDesk(self.owner.settings, services.blobs)
        try:  # the same rules as every upload ticket: a name, a type medialens analyses, the size limit
            name, content_type = desk.accepted(unquote(path[len(SERVER_UPLOAD_PATH) + 1 :]), length)
        except UploadTooLargeError as error:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", error.reason)
            return
        except UnsupportedUploadError as error:
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_file_type", error.reason)
            return
        except UploadError as error:
            self._error(HTTPStatus.BAD_REQUEST, "bad_upload", error.reason)
            return
        if length == 0:
            self._error(HTTPStatus.BAD_REQUEST, "bad_upload", "an upload needs a non-empty body")
            return
        settings = self.owner.settings
        uri = join_uri(settings.drop_bucket, desk.key_for(name))
        metadata = {
            header[len(METADATA_HEADER) :].lower(): value
            for header, value in self.headers.items()
            if header.lower().startswith(METADATA_HEADER)
        }
        with tempfile.TemporaryDirectory(prefix="medialens-upload-", dir=settings.home) as folder:
            staged = Path(folder) / name
            with staged.open("wb") as target:
                remaining = length
                while remaining:
                    block = self.rfile.read(min(remaining, 1 << 20))
                    if not block:  # the client went away mid-upload: nothing reaches the bucket
                        self.close_connection = True
                        return
                    target.write(block)
                    remaining -= len(block)
            info = services.blobs.put_file(uri, staged, content_type, metadata)
        body = json.dumps({"key": info.key, "asset_id": asset_id_of(info), "size": info.size}).encode()
        self._send(HTTPStatus.CREATED, body, "application/json")

    def _operations_report(self) -> None:
        """GET /operations/report.html?since_hours=24: ``medialens report``'s page, for the
        Operations view to frame (no script in it; styles and SVG inline)."""
        if not self._read_only():
            return
        services = self.owner.services
        if services is None:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "not_ready", "the server is starting")
            return
        query = parse_qs(urlsplit(self.path).query)
        try:
            hours = float((query.get("since_hours") or ["24"])[-1])
            if not 0 < hours <= 24 * 366:
                raise ValueError(hours)
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "bad_since", "since_hours is a number of hours (0 < h <= 8784)")
            return
        until = utcnow()
        since = until - timedelta(hours=hours)
        samples = sampled(self.owner.settings, since, until)
        figures = build_report(services.registry.iter_all(), since, until, samples=samples)
        span = "the last hour" if hours == 1 else f"the last {hours:g} hours"
        page = render_html(figures, title=f"medialens operations: {span}").encode()
        headers = {"Content-Security-Policy": REPORT_POLICY, "Cache-Control": "no-store"}
        self._send(HTTPStatus.OK, page, "text/html; charset=utf-8", headers)

    def _stream_speech(self, body: bytes) -> bool:
        """POST /api/speech answered as the audio is made, sentence by sentence (chunked), so the
        first sentence plays while the rest is synthesised. False (the gateway answers, with the
        API's own errors) when the request is not one this can speak."""
        try:
            request = SpeechRequest.model_validate_json(body)
            blocks = speak(self.owner.settings, request.text, request.language, request.format)
            first = next(blocks)
        except (ValidationError, ValueError, MediaLensError, StopIteration):
            return False
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", SPEECH_CONTENT_TYPES[request.format])
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        for block in itertools.chain([first], blocks):
            if block:
                self.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        return True

    def _file(self, path: str) -> None:
        if not self._read_only():
            return
        rest = path[len(LOCAL_FILES_PATH) + 1 :]
        bucket, _, key = rest.partition("/")
        file = self.owner.blob_path(unquote(bucket), unquote(key)) if key else None
        if file is None:
            self._error(HTTPStatus.NOT_FOUND, "not_found", "no such object")
            return
        suffix = Path(key).suffix.lower()
        if suffix in PLAIN_TEXT_EXTENSIONS:
            content_type = "text/plain; charset=utf-8"
        else:
            content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
        if content_type.startswith(("text/html", "image/svg", "application/xhtml")):
            # An uploaded page must not run scripts with this server's origin.
            headers["Content-Security-Policy"] = "sandbox"
        stat = file.stat()
        headers["ETag"] = f'"{stat.st_size:x}-{int(stat.st_mtime_ns):x}"'
        self._send_file(file, stat.st_size, content_type, headers)

    def _send_file(self, file: Path, size: int, content_type: str, headers: dict[str, str]) -> None:
        first, last, status = 0, size - 1, HTTPStatus.OK
        requested = self.headers.get("Range")
        if requested:
            try:
                span = _parse_range(requested, size)
            except ValueError:
                span = (0, size - 1)  # a form not honoured here: the whole object (RFC 9110 allows it)
            else:
                if span is None:
                    self._error(
                        HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                        "range_not_satisfiable",
                        "the range lies outside the object",
                        {"Content-Range": f"bytes */{size}"},
                    )
                    return
                status = HTTPStatus.PARTIAL_CONTENT
                headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
            first, last = span
        length = max(0, last - first + 1)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        with file.open("rb") as handle:
            handle.seek(first)
            remaining = length
            while remaining > 0:
                block = handle.read(min(CHUNK, remaining))
                if not block:
                    break
                self.wfile.write(block)
                remaining -= len(block)

    def _static(self, path: str) -> None:
        if not self._read_only():
            return
        root = self.owner.web_dir
        relative = unquote(path).lstrip("/") or "index.html"
        if ASSET_VIEW.match(path):  # /assets/<id>: one asset's view (the page reads the id from its address)
            relative = "asset.html"
        elif path == OPERATIONS_VIEW:
            relative = "operations.html"
        file = (root / relative).resolve()
        if not file.is_relative_to(root) or not file.is_file() or file.suffix not in STATIC_TYPES:
            self._error(HTTPStatus.NOT_FOUND, "not_found", f"no page {path}")
            return
        headers = {"Cache-Control": "no-cache"}
        if file.suffix == ".html":
            headers["Content-Security-Policy"] = self.owner.content_security_policy()
            headers["Referrer-Policy"] = "no-referrer"
        self._send(HTTPStatus.OK, file.read_bytes(), STATIC_TYPES[file.suffix], headers)
