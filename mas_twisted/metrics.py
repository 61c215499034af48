# SPDX-License-Identifier: AGPL-3.0-only
"""The process's Prometheus metrics: every metric object and the tiny ``record_*`` hooks.

One module of metric objects in ``prometheus_client``'s default registry (served by the
``prometheus`` resource, ``rest/metrics.py``), importing nothing of ours, so that listeners,
handlers, the storage pool and the queue worker may each call it in one line. Names follow
MAS's OpenTelemetry instruments (MAS ``crates/*``, inventory §14) in the form MAS's Prometheus
exporter gives them (dots become underscores, counters end in ``_total``); where MAS records
milliseconds, these record seconds, as Prometheus names them (``_seconds``).

- HTTP (MAS ``crates/cli/src/server.rs``, ``http.server.duration``):
  ``http_server_request_duration_seconds{mas_listener_name, http_request_method, http_route,
  http_response_status_code}``. ``http_route`` is the route template (Klein's rule, e.g.
  ``/account/sessions/<id>``, or an exact leaf path), never the raw path; a path no route serves
  is ``FALLBACK``, as in MAS.
- Application counters, MAS's names and attributes: ``mas_oauth2_introspection_request_total``
  {kind, active}; ``mas_oauth2_token_request_total`` {grant_type, successful};
  ``mas_compat_login_request_total`` {type, result}; ``mas_user_password_login_attempt_total``
  {result}; ``mas_user_password_registration_total``; ``mas_upstream_oauth2_login_total`` and
  ``mas_upstream_oauth2_registration_total`` {provider}; beyond MAS,
  ``mas_email_sent_total`` {template, result}.
- Database (MAS ``crates/cli/src/app_state.rs``): ``db_connections_usage{state=used|idle}``,
  ``db_connections_max``; beyond MAS, ``mas_db_pool_waiting_interactions`` (work queued for a
  connection), ``mas_db_interaction_duration_seconds{desc}`` (one ``runInteraction`` /
  ``run_read``, retries included, by its ``desc``) and ``mas_db_interaction_schedule_seconds``
  (the wait for a pool thread).
- Job queue (MAS ``crates/tasks/src/new_queue.rs``): ``job_process_duration_seconds{job_queue_name,
  job_result}`` (its ``_count`` is the runs; ``job_result="failed"`` the failures),
  ``job_active_tasks{job_queue_name}``, ``mas_queue_worker_leader`` (1 in the process whose worker
  holds the leader lease) and ``mas_queue_jobs{job_queue_name, status}``: see
  :func:`set_queue_depth` for why only the leader exports it.
- ``mas_reactor_tick_lag_seconds``: how late a 1 s ``LoopingCall`` runs (:class:`ReactorLagMonitor`),
  the lag every request and job on this reactor sees; Synapse's ``python_twisted_reactor_tick_time``
  measures the related time between reactor ticks.

Label children are cached in plain dicts (a ``labels()`` lookup per request cost a few percent
of a cheap request's CPU, bench/introspect); every label value is bounded (configured listeners,
route templates, known methods and grant types, code-literal ``desc`` values, queue names).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: The methods labelled by name; anything else is ``_OTHER`` (MAS's ``otel_http_method``),
#: which keeps a client from creating label values at will.
KNOWN_METHODS = frozenset({"OPTIONS", "GET", "POST", "PUT", "DELETE", "HEAD", "TRACE", "CONNECT", "PATCH"})

#: ``http_route`` of a request no route serves (MAS: ``otel_http_route(...).unwrap_or("FALLBACK")``).
FALLBACK_ROUTE = "FALLBACK"

_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_SERVER_REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Time from the request line to the end of the response, by listener, method, route template and status",
    ["mas_listener_name", "http_request_method", "http_route", "http_response_status_code"],
    buckets=_HTTP_BUCKETS,
)


def metric_method(method: str) -> str:
    return method if method in KNOWN_METHODS else "_OTHER"


_http_children: dict[tuple[str, str, str, int], Any] = {}


def record_request(
    listener: str, method: str, route: str | None, status: int, duration_seconds: float
) -> None:
    """Observe one response's duration (``route`` ``None``: no route served it)."""
    key = (listener, method, route or FALLBACK_ROUTE, status)
    child = _http_children.get(key)
    if child is None:
        child = HTTP_SERVER_REQUEST_DURATION.labels(listener, metric_method(method), key[2], str(status))
        _http_children[key] = child
    child.observe(duration_seconds if duration_seconds > 0.0 else 0.0)


# -- application counters ---------------------------------------------------------------------

INTROSPECTION_REQUESTS = Counter(
    "mas_oauth2_introspection_request",
    "OAuth 2.0 introspection requests, by token kind and whether it was active",
    ["kind", "active"],
)
TOKEN_REQUESTS = Counter(
    "mas_oauth2_token_request",
    "OAuth 2.0 token requests, by grant type and outcome",
    ["grant_type", "successful"],
)
COMPAT_LOGIN_REQUESTS = Counter(
    "mas_compat_login_request",
    "Compatibility (m.login.*) login requests, by login type and outcome",
    ["type", "result"],
)
PASSWORD_LOGIN_ATTEMPTS = Counter(
    "mas_user_password_login_attempt", "Password login attempts on the login page, by outcome", ["result"]
)
PASSWORD_REGISTRATIONS = Counter("mas_user_password_registration", "Accounts registered with a password")
UPSTREAM_LOGINS = Counter(
    "mas_upstream_oauth2_login", "Successful upstream OAuth 2.0 logins to existing accounts", ["provider"]
)
UPSTREAM_REGISTRATIONS = Counter(
    "mas_upstream_oauth2_registration", "Successful upstream OAuth 2.0 registrations", ["provider"]
)
EMAILS_SENT = Counter(
    "mas_email_sent", "Emails handed to the transport, by template and outcome", ["template", "result"]
)

#: The grant types labelled by name; anything else a client sends is ``unknown``.
KNOWN_GRANT_TYPES = frozenset(
    {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    }
)
KNOWN_LOGIN_TYPES = frozenset({"m.login.password", "m.login.token", "m.login.sso"})

_counter_children: dict[tuple[Any, ...], Any] = {}


def _inc(counter: Counter, *labels: str) -> None:
    key = (counter, *labels)
    child = _counter_children.get(key)
    if child is None:
        child = counter.labels(*labels) if labels else counter
        _counter_children[key] = child
    child.inc()


def record_introspection(kind: str, active: bool) -> None:
    """One introspection answer (MAS ``mas.oauth2.introspection_request``). ``kind`` is MAS's
    (``oauth2_access_token``, ``compat_refresh_token``, ...; ``unknown`` for a malformed token)."""
    _inc(INTROSPECTION_REQUESTS, kind, "true" if active else "false")


def record_token_request(grant_type: str | None, success: bool) -> None:
    """One token endpoint answer (MAS ``mas.oauth2.token_request``; ``successful`` is
    ``success`` or ``error``, as MAS labels it)."""
    grant = grant_type if grant_type in KNOWN_GRANT_TYPES else "unknown"
    _inc(TOKEN_REQUESTS, grant, "success" if success else "error")


def record_compat_login(login_type: str | None, success: bool) -> None:
    """One ``POST /_matrix/client/v3/login`` answer (MAS ``mas.compat.login_request``)."""
    kind = login_type if login_type in KNOWN_LOGIN_TYPES else "unsupported"
    _inc(COMPAT_LOGIN_REQUESTS, kind, "success" if success else "error")


def record_password_login(result: str) -> None:
    """``success``, ``error`` or ``mismatch`` (MAS ``mas.user.password_login_attempt``)."""
    _inc(PASSWORD_LOGIN_ATTEMPTS, result)


def record_password_registration() -> None:
    _inc(PASSWORD_REGISTRATIONS)


def record_upstream_login(provider_id: str) -> None:
    _inc(UPSTREAM_LOGINS, provider_id)


def record_upstream_registration(provider_id: str) -> None:
    _inc(UPSTREAM_REGISTRATIONS, provider_id)


def record_email_sent(template: str, success: bool) -> None:
    _inc(EMAILS_SENT, template, "success" if success else "error")


# -- database -------------------------------------------------------------------------------

_DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

DB_INTERACTION_DURATION = Histogram(
    "mas_db_interaction_duration_seconds",
    "Time one database interaction held its connection (retries included), by its desc",
    ["desc"],
    buckets=_DB_BUCKETS,
)
DB_INTERACTION_SCHEDULE = Histogram(
    "mas_db_interaction_schedule_seconds",
    "Time a database interaction waited for a pool thread and its connection",
    buckets=_DB_BUCKETS,
)

_db_children: dict[str, Any] = {}
_db_children_lock = threading.Lock()


def record_db_interaction(desc: str, scheduled_seconds: float, duration_seconds: float) -> None:
    """One interaction, from the pool thread that ran it (the histograms are thread-safe)."""
    child = _db_children.get(desc)
    if child is None:
        with _db_children_lock:
            child = _db_children.get(desc)
            if child is None:
                child = DB_INTERACTION_DURATION.labels(desc)
                _db_children[desc] = child
    child.observe(duration_seconds)
    DB_INTERACTION_SCHEDULE.observe(scheduled_seconds if scheduled_seconds > 0.0 else 0.0)


class PoolCollector(Collector):
    """The connection pools' usage, read at scrape time (on the reactor thread, nothing queried).

    MAS's ``db.connections.usage`` {state: used|idle} and ``db.connections.max``; and the
    interactions waiting for a thread. A thread of adbapi's pool holds one connection while it
    works, so the busy threads are the connections in use; the idle ones are the other open
    connections. Every registered pool is summed (a process has one).
    """

    def __init__(self) -> None:
        self._pools: list[Any] = []

    def add(self, conn_pool: Any) -> None:
        self._pools.append(conn_pool)

    def remove(self, conn_pool: Any) -> None:
        if conn_pool in self._pools:
            self._pools.remove(conn_pool)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        used = opened = maximum = waiting = 0
        for pool in list(self._pools):
            threads = getattr(pool, "threadpool", None)
            team = getattr(threads, "_team", None)
            if team is not None:
                stats = team.statistics()
                used += stats.busyWorkerCount
                waiting += stats.backloggedWorkCount
            opened += len(getattr(pool, "connections", {}))
            maximum += int(getattr(pool, "max", 0))
        usage = GaugeMetricFamily(
            "db_connections_usage", "Database connections in use and idle", labels=["state"]
        )
        usage.add_metric(["used"], used)
        usage.add_metric(["idle"], max(opened - used, 0))
        yield usage
        yield GaugeMetricFamily(
            "db_connections_max", "The most database connections the pool opens", value=maximum
        )
        yield GaugeMetricFamily(
            "mas_db_pool_waiting_interactions",
            "Database interactions waiting for a pool thread",
            value=waiting,
        )

    def describe(self) -> Iterable[Any]:
        return []


POOLS = PoolCollector()
REGISTRY.register(POOLS)


def watch_pool(conn_pool: Any) -> None:
    """Export ``conn_pool``'s (an adbapi ``ConnectionPool``) usage; :func:`unwatch_pool` on close."""
    POOLS.add(conn_pool)


def unwatch_pool(conn_pool: Any) -> None:
    POOLS.remove(conn_pool)


# -- job queue ------------------------------------------------------------------------------

JOB_PROCESS_DURATION = Histogram(
    "job_process_duration_seconds",
    "Time a job took to run, by queue and result (success or failed)",
    ["job_queue_name", "job_result"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
JOB_ACTIVE_TASKS = Gauge("job_active_tasks", "Jobs running in this process, by queue", ["job_queue_name"])
QUEUE_WORKER_LEADER = Gauge(
    "mas_queue_worker_leader", "1 when this process's queue worker holds the leader lease"
)
QUEUE_JOBS = Gauge(
    "mas_queue_jobs",
    "Jobs in the queue by queue and status, counted by the leader worker (absent elsewhere)",
    ["job_queue_name", "status"],
)


def record_job_started(queue_name: str) -> None:
    JOB_ACTIVE_TASKS.labels(queue_name).inc()


def record_job_finished(queue_name: str, success: bool, duration_seconds: float) -> None:
    """A job ended: ``success`` completed it; otherwise it failed (retried or not)."""
    JOB_ACTIVE_TASKS.labels(queue_name).dec()
    JOB_PROCESS_DURATION.labels(queue_name, "success" if success else "failed").observe(
        max(duration_seconds, 0.0)
    )


def set_queue_leader(is_leader: bool) -> None:
    """The worker's leadership changed. On losing it, the depth gauge is cleared (below)."""
    QUEUE_WORKER_LEADER.set(1 if is_leader else 0)
    if not is_leader:
        QUEUE_JOBS.clear()


def set_queue_depth(counts: Mapping[tuple[str, str], int]) -> None:
    """The jobs by ``(queue_name, status)``, as the leader counted them in one query.

    Correct across processes: counting at enqueue and completion would give each process
    only its own share, and a custom collector querying ``queue_jobs`` at scrape time would
    block the reactor. So the worker holding the leader lease (one in the whole deployment)
    counts periodically and sets this gauge; a worker losing the lease clears it, so that
    ``max by (job_queue_name, status)`` (or ``sum``) across processes is the one current count.
    Pairs no longer counted are set to 0 rather than dropped, so a drained queue reads 0.
    """
    for (queue_name, status), value in counts.items():
        QUEUE_JOBS.labels(queue_name, status).set(value)
    for labels in list(_queue_depth_seen):
        if labels not in counts:
            QUEUE_JOBS.labels(*labels).set(0)
    _queue_depth_seen.update(counts)


_queue_depth_seen: set[tuple[str, str]] = set()


# -- reactor --------------------------------------------------------------------------------

REACTOR_TICK_LAG = Histogram(
    "mas_reactor_tick_lag_seconds",
    "How late a once-a-second timer on the reactor ran",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class ReactorLagMonitor:
    """A ``LoopingCall`` every ``interval`` seconds observing how late it runs.

    Args:
        reactor: the reactor (its ``seconds()`` is the clock the timer runs on).
        now: the clock to measure with; defaults to ``reactor.seconds``.
    """

    def __init__(self, reactor: Any, interval: float = 1.0, now: Callable[[], float] | None = None):
        from twisted.internet.task import LoopingCall

        self._now = now or reactor.seconds
        self._interval = interval
        self._expected = 0.0
        self._call = LoopingCall(self._tick)
        self._call.clock = reactor

    def start(self) -> None:
        if not self._call.running:
            self._expected = self._now() + self._interval
            self._call.start(self._interval, now=False)

    def stop(self) -> None:
        if self._call.running:
            self._call.stop()

    def _tick(self) -> None:
        now = self._now()
        REACTOR_TICK_LAG.observe(max(now - self._expected, 0.0))
        self._expected = now + self._interval


_lag_monitor: ReactorLagMonitor | None = None


def start_reactor_lag_monitor(reactor: Any) -> None:
    """Start this process's one :class:`ReactorLagMonitor` (again a no-op)."""
    global _lag_monitor
    if _lag_monitor is None:
        _lag_monitor = ReactorLagMonitor(reactor)
    _lag_monitor.start()


def stop_reactor_lag_monitor() -> None:
    global _lag_monitor
    if _lag_monitor is not None:
        _lag_monitor.stop()
        _lag_monitor = None


# -- exporter -------------------------------------------------------------------------------

#: ``telemetry.metrics.exporter`` values this process honours.
SUPPORTED_EXPORTERS = ("none", "prometheus")


def metrics_exporter_supported(config: Any) -> str | None:
    """``None`` when ``telemetry.metrics.exporter`` is honoured, else one line saying why not.

    ``config`` is the root configuration (or its ``telemetry.metrics`` section). ``prometheus``
    fills the ``prometheus`` resource; ``none`` records nothing anyone can read (the resource
    answers 500, as MAS's does); ``stdout`` and ``otlp`` would need the OpenTelemetry SDK and are
    refused at start-up with this line (MAS 1.22 supports them).
    """
    section = getattr(getattr(config, "telemetry", None), "metrics", config)
    exporter = getattr(section, "exporter", "none")
    if exporter in SUPPORTED_EXPORTERS:
        return None
    return (
        f"telemetry.metrics.exporter: {exporter!r} is not supported by mas-twisted;"
        " use 'prometheus' (served by a listener's prometheus resource) or 'none'"
    )


def monotonic() -> float:
    """The clock interactions and jobs are timed with."""
    return time.monotonic()
