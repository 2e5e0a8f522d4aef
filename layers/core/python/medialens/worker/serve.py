"""The SageMaker inference contract served by the heavy-worker image: ``GET /ping`` and
``POST /invocations`` on port 8080 (``docker run <image> serve``).

``/invocations`` takes ``{"messages": [...]}`` of step messages (the heavy queue's bodies). With
task tokens, the container answers Step Functions itself, exactly as the SQS worker loop does, so
an async endpoint can be fed heavy-queue messages by a plain forwarder; without tokens, the step
results come back in the response.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import BaseModel, ValidationError

from medialens.domain.steps import StepMessage
from medialens.errors import MediaLensError
from medialens.observability import get_logger
from medialens.pipeline.catalog import CATALOG, WorkerClass
from medialens.services import Services, get_services
from medialens.worker.memory import cap_malloc_arenas
from medialens.worker.tasks import TaskRunner

logger = get_logger("medialens-serve")
MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit
UNANSWERED = "unanswered"  # a task token placeholder: the result is returned, not sent


def invoke(services: Services, payload: dict[str, Any]) -> dict[str, Any]:
    """Runs heavy step messages; answers their tasks when they carry tokens."""
    raw = payload.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ValueError('expected {"messages": [step message, ...]}')
    messages = [StepMessage.model_validate({"TaskToken": UNANSWERED, **m}) for m in raw]
    with_tokens = [m for m in messages if m.task_token != UNANSWERED]
    if with_tokens:
        TaskRunner(services).run_heavy(with_tokens)
    results: list[dict[str, Any]] = [{"step": m.step.value, "answered": True} for m in with_tokens]
    direct = [m for m in messages if m.task_token == UNANSWERED]
    for step in dict.fromkeys(m.step for m in direct):
        group = [m for m in direct if m.step is step]
        spec = CATALOG.get(step)
        if spec is None or spec.worker is not WorkerClass.HEAVY:
            results += [{"step": step.value, "error": "MediaLens.Error", "cause": "not a heavy step"} for _ in group]
            continue
        outcomes: list[BaseModel | Exception] = []
        calls = []
        for message in group:
            try:
                calls.append(spec.call(message.asset, message.input))
            except MediaLensError as error:
                outcomes.append(error)
        outcomes += spec.execute(services, calls)
        for outcome in outcomes:
            if isinstance(outcome, BaseModel):
                results.append({"step": step.value, "output": outcome.model_dump(mode="json")})
            else:
                error_name = getattr(outcome, "error_name", "MediaLens.Internal")
                results.append({"step": step.value, "error": error_name, "cause": str(outcome)})
    return {"results": results}


class _Handler(BaseHTTPRequestHandler):
    services: Services

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != "/ping":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        try:
            self.services.embedder.load()  # healthy means the models are loadable, not just the port
        except Exception as error:  # noqa: BLE001 - any failure to load means unhealthy
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "unhealthy", "reason": str(error)})
            return
        self._reply(HTTPStatus.OK, {"status": "healthy"})

    def do_POST(self) -> None:
        if self.path != "/invocations":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "payload too large; pass s3:// references"})
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
            self._reply(HTTPStatus.OK, invoke(self.services, payload))
        except (ValueError, ValidationError) as error:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(error)})

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format % args)


def make_server(services: Services, host: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"services": services})
    return ThreadingHTTPServer((host, port), handler)


def main() -> None:
    cap_malloc_arenas()  # before the server's and the models' threads start
    server = make_server(get_services())
    logger.info("serving the SageMaker contract", extra={"port": server.server_port})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    thread.join()


if __name__ == "__main__":
    main()
