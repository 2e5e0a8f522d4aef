"""The whole pipeline on one machine.

Embedded profile: an in-process moto server runs SQS and Step Functions (executing the real ASL);
blobs, registry and index are files under ``MEDIALENS_HOME``. Emulated-AWS profile
(``AWS_ENDPOINT_URL``): the same pollers and workers run against the emulator's resources.
Either way the handlers are the Lambda handlers and the heavy worker is the container's loop.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import socket
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import requests
from botocore.exceptions import ClientError
from filelock import FileLock, Timeout

from medialens import aws
from medialens.adapters.storage.base import join_uri
from medialens.admission import (
    FAILED_EXECUTION_STATES,
    ExecutionEnded,
    execution_arn,
    record_execution_end,
    start_execution,
)
from medialens.domain.assets import Asset, AssetStatus, AuditEvent, UploadOptions
from medialens.handlers import dlq, ingest, light
from medialens.insight.report import QUEUE_DEPTH
from medialens.local.metric_store import MetricStore, metric_store_path
from medialens.local.notifications import Change, DropNotifications, PendingNotification, event_body
from medialens.local.poller import EventSourcePoller, Handler
from medialens.local.wiring import drop_outbox, local_services, runner_lock
from medialens.observability import record_local, set_local_sink
from medialens.orchestration.provision import Resources, dead_letter_queue_name, provision
from medialens.revisions import settle_revisions
from medialens.services import Services, set_services
from medialens.settings import Profile, Settings
from medialens.worker.heavy import HeavyWorker, HeavyWorkerConfig
from medialens.worker.memory import cap_malloc_arenas

# How often an unsettled outbox row's object is read to see whether it is gone or replaced.
SUPERSEDED_CHECK_S = 5.0


class RuntimeBusyError(RuntimeError):
    """Another process already runs the embedded pipeline for this MEDIALENS_HOME."""


def work_pending(services: Services, outbox: DropNotifications) -> bool:
    """Uploads not yet admitted, or assets not yet finished: what a runner is needed for."""
    if outbox.pending_count():
        return True
    registry = services.registry
    return any(registry.list_assets(status=s, limit=1)[0] for s in (AssetStatus.QUEUED, AssetStatus.RUNNING))


QUEUE_SAMPLE_S = 10.0
# The execution watcher's round: each round reads every unfinished asset and asks the emulator
# about its execution, which competes with the pipeline for the interpreter.
WATCH_EXECUTIONS_S = 5.0


def configure_local_process(settings: Settings) -> None:
    """Logs to a file instead of the terminal; no X-Ray or EMF stdout locally; malloc arenas
    capped before the workers' threads start (medialens.worker.memory)."""
    cap_malloc_arenas()
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MEDIALENS_LOG_FILE", str(logs / "pipeline.log"))
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "medialens-local")
    for noisy in ("werkzeug", "moto", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    # EMF is off locally, so Powertools' "no metrics to publish" warning says nothing useful.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _spare_moto_repeated_work() -> None:
    """Work moto's in-process server repeats with the same answer every time, measured in the
    embedded pipeline (py-spy, scripts/bench_pipeline.py --mixed) and cached, for the local runtime
    only (versions of moto without these functions are left as they are):

    - its Step Functions interpreter parses the state machine's definition with ANTLR for every
      execution (0.23 s of interpreter time each, holding the GIL the models' threads need): the
      parsed program is kept per definition and each execution gets a deep copy (8 ms), so no
      state is shared between executions;
    - it compiles every JSONPath again (a new PLY parser each time): compiled paths are kept;
    - it builds a new boto3 client (and connection pool) for each task it sends to a queue;
    - its request router lists moto's package folder on every request to find the service.
    """
    import moto.backends
    import moto.settings
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sqs
    from moto.stepfunctions.parser.asl.utils import json_path
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    modules = getattr(moto.backends, "list_of_moto_modules", None)
    if modules is not None and not hasattr(modules, "cache_info"):
        moto.backends.list_of_moto_modules = functools.cache(lambda: tuple(modules()))
    for module in (json_path, result_path):
        compile_path = getattr(module, "parse", None)
        if compile_path is not None and not hasattr(compile_path, "cache_info"):
            module.parse = functools.lru_cache(maxsize=4096)(compile_path)  # type: ignore[attr-defined]
    entrypoint = getattr(ExecutionWorker, "_get_evaluation_entrypoint", None)
    if entrypoint is not None and not getattr(entrypoint, "medialens_cached", False):
        programs: dict[str, Any] = {}
        programs_lock = threading.Lock()

        def cached_entrypoint(worker: Any) -> Any:
            definition = worker._evaluation_details.state_machine_details.definition
            with programs_lock:
                if definition not in programs:
                    programs[definition] = entrypoint(worker)
                return copy.deepcopy(programs[definition])

        cached_entrypoint.medialens_cached = True  # type: ignore[attr-defined]
        ExecutionWorker._get_evaluation_entrypoint = cached_entrypoint  # type: ignore[method-assign,assignment]
    build = getattr(state_task_service_sqs, "boto_client_for", None)
    if build is not None and not getattr(build, "medialens_shared", False):
        clients: dict[tuple[str, str, str], Any] = {}
        lock = threading.Lock()

        def shared_client(region: str, service: str, state_credentials: Any = None) -> Any:
            # boto3 clients are thread-safe; the credentials are moto's own fixed ones. Per port:
            # a later runtime in the same process listens on another.
            key = (region, service, moto.settings.moto_server_port())
            with lock:
                if key not in clients:
                    clients[key] = build(region, service)
                return clients[key]

        shared_client.medialens_shared = True  # type: ignore[attr-defined]
        state_task_service_sqs.boto_client_for = shared_client  # type: ignore[attr-defined]


def _keep_answers_that_come_before_the_wait() -> None:
    """A task answered before moto's interpreter starts waiting for it waits out its heartbeat.

    For a ``.waitForTaskToken`` task with ``HeartbeatSeconds`` the interpreter sends the message,
    then sets up the heartbeat it waits on. A light step that answers within milliseconds (a
    reuse check, a finalize) can land between the two when the interpreter's thread is slow to
    get the GIL back: the answer is stored, the heartbeat it would have signalled does not exist
    yet, and the new one waits its full 600 s before the step is retried (seen once under a
    loaded test run: one text file took ten minutes). Here a heartbeat set up after the answer
    arrived starts signalled, so the interpreter reads the answer at once. AWS's service has no
    such window; local runtime only, and left alone on versions of moto without this method.
    """
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    setup = getattr(CallbackEndpoint, "setup_heartbeat_endpoint", None)
    if setup is None or getattr(setup, "medialens_early_answers", False):
        return

    @functools.wraps(setup)  # __wrapped__: moto's own, for a test to compare with
    def setup_heartbeat_endpoint(endpoint: Any, heartbeat_seconds: int) -> Any:
        heartbeat = setup(endpoint, heartbeat_seconds)
        # An answer that arrives from here on signals this heartbeat itself (notify reads it).
        if endpoint.get_outcome() is not None:
            heartbeat.notify()
        return heartbeat

    setup_heartbeat_endpoint.medialens_early_answers = True  # type: ignore[attr-defined]
    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint  # type: ignore[method-assign,assignment]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRuntime:
    def __init__(
        self,
        settings: Settings,
        light_workers: int = 2,
        heavy_config: HeavyWorkerConfig | None = None,
        run_heavy_worker: bool = True,
        state_machine_overrides: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.base_settings = settings
        self.settings = settings
        self.light_workers = light_workers
        # The pollers' one-second long poll: stopping waits for the receive in flight, and a
        # local queue costs nothing to ask again.
        self.heavy_config = heavy_config or HeavyWorkerConfig(wait_time_s=1)
        self.run_heavy_worker = run_heavy_worker
        self.state_machine_overrides = state_machine_overrides
        self.embedded = settings.profile is Profile.EMBEDDED
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.pollers: list[EventSourcePoller] = []
        self.heavy: HeavyWorker | None = None
        self.resources = Resources()
        self._moto: Any = None
        self._lock: FileLock | None = None
        self.notifications: DropNotifications | None = None
        self.services: Services | None = None
        self._backlog: deque[Asset] = deque()  # unfinished assets to resume, as room allows
        self.metrics: MetricStore | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> LocalRuntime:
        configure_local_process(self.base_settings)
        # Metrics are off locally (no EMF): what the code emits goes to the metric store instead.
        self.metrics = MetricStore(metric_store_path(self.base_settings))
        set_local_sink(self.metrics)
        if self.embedded:
            self._acquire_lock()
            self._start_moto()
            self.notifications = drop_outbox(self.settings)
        self.resources = provision(
            self.settings, storage=not self.embedded, definition_transform=self.state_machine_overrides
        )
        self.settings = self.settings.model_copy(update={"state_machine_arn": self.resources.state_machine_arn})
        services = local_services(self.settings, self.notifications)
        self.services = services
        set_services(services)
        self._start_workers(services)
        if self.embedded:
            assert self.notifications is not None
            self.notifications.resend_unsettled()  # the queue they were sent to died with its runner
            self._reconcile_drop_bucket(services)
            self._resume_unfinished(services)
            self._spawn("outbox-pump", self._pump_notifications)
        self._spawn("execution-watcher", self._watch_executions)
        self._spawn("queue-sampler", self._sample_queues)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=15)
        set_local_sink(None)
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        set_services(None)
        aws.reset_clients()
        aws.reset_queue_urls()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _acquire_lock(self) -> None:
        lock = runner_lock(self.base_settings)
        try:
            lock.acquire(timeout=0)
        except Timeout as error:
            raise RuntimeBusyError(
                f"another medialens process runs the pipeline for {self.base_settings.home}"
            ) from error
        self._lock = lock

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        _spare_moto_repeated_work()
        _keep_answers_that_come_before_the_wait()
        port = _free_port()
        # moto's Step Functions interpreter calls SQS on its own server: it must know the port.
        os.environ["MOTO_PORT"] = str(port)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        endpoint = f"http://127.0.0.1:{port}"
        # moto keeps its state in process-wide backends: start from nothing, as a new process would.
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        response = requests.post(
            f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
        )
        response.raise_for_status()
        self.settings = self.base_settings.model_copy(
            update={"aws_endpoint_url": endpoint, "profile_override": Profile.EMBEDDED}
        )

    # --- workers -----------------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _add_poller(self, queue: str, handler: Handler, function_name: str, batch_size: int, wait_s: int = 1) -> None:
        poller = EventSourcePoller(
            aws.sqs(self.settings),
            self.resources.queue_urls[queue],
            handler,
            function_name=function_name,
            region=self.settings.region,
            batch_size=batch_size,
            wait_time_s=wait_s,
        )
        self.pollers.append(poller)
        self._spawn(f"poller-{function_name}", lambda: poller.run(self.stop_event))

    def _start_workers(self, services: Services) -> None:
        settings = self.settings
        self._add_poller(settings.ingest_queue, ingest.handler, "medialens-ingest", batch_size=10)
        for n in range(self.light_workers):
            self._add_poller(settings.light_queue, light.handler, f"medialens-light-{n}", batch_size=1)
        for queue in (settings.ingest_queue, settings.light_queue, settings.heavy_queue):
            self._add_poller(dead_letter_queue_name(queue), dlq.handler, f"medialens-dlq-{queue}", batch_size=10)
        if self.run_heavy_worker:  # off when the GPU worker runs elsewhere (or a test plays it dead)
            self.heavy = HeavyWorker(services, self.resources.queue_urls[settings.heavy_queue], self.heavy_config)
            heavy = self.heavy
            self._spawn("heavy-worker", lambda: heavy.run(self.stop_event))

    def _sample_queues(self) -> None:
        """Depth of every work and dead-letter queue, every ``QUEUE_SAMPLE_S`` (what SQS's own
        metrics are on AWS): ``QueueDepth`` with dimensions queue and state (visible, in_flight)."""
        sqs = aws.sqs(self.settings)
        settings = self.settings
        work = (settings.ingest_queue, settings.light_queue, settings.heavy_queue)
        queues = [*work, *(dead_letter_queue_name(queue) for queue in work)]
        while not self.stop_event.is_set():
            for queue in queues:
                try:
                    attributes = sqs.get_queue_attributes(
                        QueueUrl=self.resources.queue_urls[queue],
                        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                    )["Attributes"]
                except (ClientError, KeyError):
                    continue  # a queue the runtime does not hold (or moto stopping): no sample
                visible = float(attributes["ApproximateNumberOfMessages"])
                in_flight = float(attributes["ApproximateNumberOfMessagesNotVisible"])
                record_local(QUEUE_DEPTH, visible, {"queue": queue, "state": "visible"})
                record_local(QUEUE_DEPTH, in_flight, {"queue": queue, "state": "in_flight"})
            self.stop_event.wait(QUEUE_SAMPLE_S)

    # --- embedded admission and recovery -------------------------------------------------------------

    def _pump_notifications(self) -> None:
        """Acknowledges outbox rows once admission has settled them (so a runner that dies in
        between leaves them for the next one), then fills the room under
        ``local_max_executions``: resumed assets first, then pending rows sent to the ingest queue."""
        assert self.notifications is not None and self.services is not None
        last_checked: dict[int, float] = {}
        while not self.stop_event.is_set():
            try:
                settled = [row.row_id for row in self.notifications.unsettled() if self._settled(row, last_checked)]
                self.notifications.mark_delivered(settled)
                room = self._resume_some(self._room())
                if room > 0:
                    self._send(self.notifications.pending(limit=room))
            except Exception:
                logging.getLogger(__name__).exception("admission outbox pump failed")
            self.stop_event.wait(0.2)

    def _room(self) -> int:
        """How many more executions may start: the cap, less the unfinished assets that have one
        and the events on their way through admission."""
        assert self.notifications is not None and self.services is not None
        registry = self.services.registry
        running = registry.count(AssetStatus.QUEUED) + registry.count(AssetStatus.RUNNING) - len(self._backlog)
        return self.settings.local_max_executions - running - self.notifications.sent_count()

    def _resume_some(self, room: int) -> int:
        """Starts the executions of up to ``room`` resumed assets; the room left."""
        assert self.services is not None
        services = self.services
        while room > 0 and self._backlog:
            asset = services.registry.get(self._backlog.popleft().asset_id)
            if asset is None or asset.status.terminal:
                continue
            services.registry.add_event(AuditEvent(asset_id=asset.asset_id, kind="resumed", detail=asset.status.value))
            start_execution(services, asset)
            room -= 1
        return room

    def _send(self, pending: list[PendingNotification]) -> None:
        assert self.notifications is not None
        sqs = aws.sqs(self.settings)
        url = self.resources.queue_urls[self.settings.ingest_queue]
        for start in range(0, len(pending), 10):
            chunk = pending[start : start + 10]
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(p.row_id), "MessageBody": event_body(p, self.settings.region)} for p in chunk],
            )
            self.notifications.mark_sent([p.row_id for p in chunk])

    def _settled(self, row: PendingNotification, last_checked: dict[int, float]) -> bool:
        """Whether admission is done with an event: its asset exists, or (checked at most every few
        seconds, as it reads the object) the object is gone or is another revision now. A removal
        is done once no finished asset of its key is left, or the key holds an object again."""
        assert self.services is not None
        info, settings = row.info, self.settings
        if info.key.endswith("/") or not info.key.startswith(settings.drop_prefix):
            return True  # admission ignores it
        registry = self.services.registry
        if row.change is Change.REMOVED:
            if self.services.blobs.head(info.uri) is not None:
                return True
            return not any(asset.status.terminal for asset in registry.by_source(info.bucket, info.key))
        # The row has no metadata, whose options are part of the asset id: match the revision, then
        # the options the object holds now (the same bytes uploaded again with --narrate is another
        # asset, which admission has not made until it exists).
        revision = info.version_id or info.etag
        matching = [
            asset
            for asset in registry.by_source(info.bucket, info.key)
            if (asset.source.version_id or asset.source.etag) == revision
        ]
        if matching:
            current = self.services.blobs.head(info.uri)
            if current is None or current.etag != info.etag:
                return True
            options = UploadOptions.from_metadata(current.metadata)
            if any(asset.source.options == options for asset in matching):
                return True
        now = time.monotonic()
        if now - last_checked.get(row.row_id, 0.0) < SUPERSEDED_CHECK_S:
            return False
        last_checked[row.row_id] = now
        current = self.services.blobs.head(info.uri)
        return current is None or current.etag != info.etag

    def _reconcile_drop_bucket(self, services: Services) -> int:
        """Objects in the drop bucket that neither the outbox nor the registry knows (written while
        a process died between the write and its outbox row, or put there by hand) are admitted;
        finished assets whose object is gone (removed by hand while nothing ran) are removed."""
        assert self.notifications is not None
        settings = self.settings
        assets = services.registry.iter_all()
        known = {asset.source.key for asset in assets} | self.notifications.known_keys()
        present = set(services.blobs.list_keys(join_uri(settings.drop_bucket, settings.drop_prefix)))
        added = 0
        for key in sorted(present - known):
            info = services.blobs.head(join_uri(settings.drop_bucket, key))
            if info is not None:
                self.notifications.record(info)
                added += 1
        gone = {(a.source.bucket, a.source.key) for a in assets if a.status.terminal and a.source.key not in present}
        for bucket, key in sorted(gone):
            settle_revisions(services, bucket, key)
        return added

    def _resume_unfinished(self, services: Services) -> None:
        """In-flight work died with the previous process's moto: those executions start again,
        as the cap on executions allows (the pump starts them)."""
        for status in (AssetStatus.QUEUED, AssetStatus.RUNNING):
            self._backlog.extend(services.registry.iter_all(status=status))

    def _watch_executions(self) -> None:
        """A safety net: an execution that ended badly without its MarkFailed step still shows."""
        assert self.services is not None
        services = self.services
        sfn = aws.stepfunctions(self.settings)
        while not self.stop_event.wait(WATCH_EXECUTIONS_S):
            try:
                for status in (AssetStatus.QUEUED, AssetStatus.RUNNING):
                    for asset in services.registry.iter_all(status=status):
                        self._check_execution(services, sfn, asset)
            except Exception:
                logging.getLogger(__name__).exception("execution watcher failed")

    def _check_execution(self, services: Services, sfn: Any, asset: Asset) -> None:
        if not asset.execution_name:
            return
        try:
            described = sfn.describe_execution(executionArn=execution_arn(services, asset.execution_name))
        except ClientError:
            return  # not started (yet) in this emulator
        if described["status"] in FAILED_EXECUTION_STATES:
            ended = ExecutionEnded(
                asset.execution_name,
                described["status"],
                asset.asset_id,
                described.get("error"),
                described.get("cause"),
            )
            record_execution_end(services, ended)

    # --- waiting -----------------------------------------------------------------------------------

    def pending_admissions(self) -> int:
        return self.notifications.pending_count() if self.notifications else 0

    def _queue_depth(self, queue: str) -> int:
        attributes = aws.sqs(self.settings).get_queue_attributes(
            QueueUrl=self.resources.queue_urls[queue],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    def idle(self) -> bool:
        assert self.services is not None
        if self.pending_admissions() or self._queue_depth(self.settings.ingest_queue):
            return False
        registry = self.services.registry
        return not any(registry.list_assets(status=s, limit=1)[0] for s in (AssetStatus.QUEUED, AssetStatus.RUNNING))

    def wait_until_idle(self, timeout_s: float = 3600, settle_s: float = 0.5) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.idle():
                time.sleep(settle_s)  # an admission may be between queue and registry
                if self.idle():
                    return True
            time.sleep(0.2)
        return False

    def wait_for(
        self,
        asset_ids: Iterable[str],
        timeout_s: float = 3600,
        on_progress: Callable[[list[Asset]], None] | None = None,
    ) -> list[Asset]:
        """Blocks until every asset is SUCCEEDED or FAILED (or the timeout passes)."""
        assert self.services is not None
        return self.services.registry.wait_until_finished(asset_ids, timeout_s, on_progress)
