"""A real SODA-like HTTP server on 127.0.0.1 for the feed tests, serving real Chicago records, with faults.

It serves ``/resource/<dataset>.json`` the way Socrata's SODA 2.1 API does, for the parts crimelens uses:
``$select`` (``:*, *``, ``*`` or a list of fields), ``$where`` (``AND`` of comparisons of ``:id``,
``:updated_at`` or a field with a quoted literal), ``$order`` (one field, ``ASC``/``DESC``; without it the
rows come back shuffled, as Socrata gives no order), ``$limit`` and ``$offset``. Null fields are left out of
a record, as SODA does.

The records are the first rows of the shared Chicago 2022 slim extract
(``chicago_crimes_2022_slim/crimes-2022-slim.csv.gz``, see its PROVENANCE.md), with the API's field names.
That extract has no ``ID``: each record gets ``id`` = 12,000,000 + its row number, and a system ``:id``
derived from it whose order differs from ``id``'s. ``:updated_at`` starts at 2026-01-01 00:00:00 UTC, 50
records per second (so that several records share an instant); every update moves it past the newest.

Faults are queued with :meth:`FeedServer.inject` and hit the next matching requests: an HTTP status (500,
429 with ``Retry-After``), a slow answer, a truncated body (complete HTTP, broken JSON), a body cut short
(the connection closes early), or the previous page served again. :meth:`FeedServer.stop` and
:meth:`FeedServer.start` restart the server on the same port; the record set survives, as a dataset would.
``before_poll[n]`` is called just before the n-th poll's first request (``:updated_at DESC``) is answered: a change
to the dataset made exactly between two polls, with no timing involved.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import random
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATASET = "ijzp-q8t2"
BASE_TIME = dt.datetime(2026, 1, 1, 0, 0, 0)
SLIM = "chicago_crimes_2022_slim/crimes-2022-slim.csv.gz"

_API_NAMES = {
    "Date": "date", "Block": "block", "Primary Type": "primary_type", "Description": "description",
    "Location Description": "location_description", "Arrest": "arrest", "Domestic": "domestic",
    "Community Area": "community_area",
}  # fmt: skip


def chicago_records(data_dir: Path, n: int, step: int = 1) -> list[dict[str, Any]]:
    """The first ``n`` rows of the Chicago slim extract as SODA records (API field names, no system fields).

    ``step``: every step-th row instead (rows 0, step, 2·step, …): the file's first rows cluster in September
    2022, every 70th row spreads over the whole year as the extract does.
    """
    out: list[dict[str, Any]] = []
    with gzip.open(data_dir / SLIM, "rt", encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if i >= n * step:
                break
            if i % step:
                continue
            record: dict[str, Any] = {"id": str(12_000_000 + i)}
            for column, api in _API_NAMES.items():
                value = (row[column] or "").strip()
                if not value:
                    continue  # SODA leaves null fields out
                if api == "date":
                    value = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").strftime("%Y-%m-%dT%H:%M:%S.000")
                if api in ("arrest", "domestic"):
                    record[api] = value.lower() == "true"
                else:
                    record[api] = value
            out.append(record)
    return out


def system_id(key: str) -> str:
    """A Socrata-like row id: stable for a record, ordered unlike its ``id``."""
    h = hashlib.sha1(key.encode()).hexdigest()
    return f"row-{h[:4]}-{h[4:8]}-{h[8:12]}"


def stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass
class Fault:
    kind: str  # status | throttle | slow | truncate | cut | repeat
    times: int
    arg: float = 0.0
    target: str = "pages"  # pages (records), ids (id listings), any
    after: int = 0  # matching requests let through before the fault hits


@dataclass
class Logged:
    at: float
    params: dict[str, str]
    headers: dict[str, str]
    status: int
    rows: int
    fault: str = ""


@dataclass
class Store:
    """The dataset as served now: records by ``:id``, each with its ``:updated_at``."""

    key: str = "id"
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated: dict[str, dt.datetime] = field(default_factory=dict)
    clock: dt.datetime = BASE_TIME

    def add(self, records: list[dict[str, Any]], *, spread: int = 50) -> None:
        for i, r in enumerate(records):
            rid = system_id(str(r[self.key]))
            self.records[rid] = dict(r)
            when = self.clock + dt.timedelta(seconds=i // spread)
            self.updated[rid] = when
        self.clock = max(self.updated.values()) + dt.timedelta(milliseconds=1500)

    def update(self, keys: list[str], changes: dict[str, Any]) -> None:
        for k in keys:
            rid = system_id(k)
            self.records[rid].update(changes)
            self.updated[rid] = self.clock
        self.clock += dt.timedelta(milliseconds=1500)

    def delete(self, keys: list[str]) -> None:
        for k in keys:
            rid = system_id(k)
            del self.records[rid]
            del self.updated[rid]

    def by_key(self) -> dict[str, dict[str, Any]]:
        return {str(r[self.key]): dict(r) for r in self.records.values()}

    def newest(self) -> dt.datetime | None:
        return max(self.updated.values()) if self.updated else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away is not a server error
            super().handle_error(request, client_address)


_COMPARISON = re.compile(r"\s*\(?\s*(:?[a-z_]+)\s*(<=|>=|<|>|=)\s*'((?:[^']|'')*)'\s*\)?\s*")


class FeedServer:
    """The server: ``start()`` gives its base URL; ``store`` is the dataset; ``log`` every request answered."""

    def __init__(
        self, records: list[dict[str, Any]], *, dataset: str = DATASET, key: str = "id", seed: int = 0
    ) -> None:
        self.dataset = dataset
        self.store = Store(key=key)
        self.store.add(records)
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._last_page: bytes | None = None
        #: poll number -> a change to make to the dataset just before that poll starts (its first request)
        self.before_poll: dict[int, Any] = {}
        self.polls_started = 0

    # -- control ----------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        handler = _handler(self)
        server = _Server(("127.0.0.1", self.port), handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def restart_after(self, seconds: float) -> threading.Timer:
        self.stop()
        timer = threading.Timer(seconds, self.start)
        timer.start()
        return timer

    def inject(self, kind: str, times: int = 1, arg: float = 0.0, target: str = "pages", after: int = 0) -> None:
        with self.lock:
            self.faults.append(Fault(kind, times, arg, target, after))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def page_requests(self) -> list[Logged]:
        return [r for r in self.log if "*" in r.params.get("$select", "*")]

    # -- answering ---------------------------------------------------------------------------------------------
    def _fault_for(self, params: dict[str, str]) -> Fault | None:
        select = params.get("$select", "*")
        kind = "pages" if "*" in select else ("ids" if ":id" in select else "other")
        hit: Fault | None = None
        with self.lock:
            for f in self.faults:  # every fault counts the matching requests; the first one due hits
                if f.times > 0 and f.target in (kind, "any"):
                    if f.after > 0:
                        f.after -= 1
                    elif hit is None:
                        f.times -= 1
                        hit = f
        return hit

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes, int]:
        """(status, headers, body, rows) for a request, faults aside."""
        if path != f"/resource/{self.dataset}.json":
            return 404, {}, json.dumps({"error": True, "message": f"dataset not found: {path}"}).encode(), 0
        allowed = {"$select", "$where", "$order", "$limit", "$offset"}
        unknown = set(params) - allowed
        if unknown:
            return 400, {}, json.dumps({"error": True, "message": f"unknown parameter {sorted(unknown)}"}).encode(), 0
        with self.lock:
            rows = [
                {":id": rid, ":updated_at": stamp(self.store.updated[rid]), **r}
                for rid, r in self.store.records.items()
            ]
        try:
            rows = [r for r in rows if _matches(r, params.get("$where", ""))]
        except ValueError as exc:
            return 400, {}, json.dumps({"error": True, "message": str(exc)}).encode(), 0
        order = params.get("$order")
        if order:
            name, _, direction = order.strip().partition(" ")
            rows.sort(key=lambda r: _sort_key(r, name), reverse=direction.strip().upper() == "DESC")
        else:
            self.rng.shuffle(rows)  # Socrata gives no order without $order
        offset = int(params.get("$offset", "0"))
        limit = int(params.get("$limit", "1000"))
        rows = rows[offset : offset + limit]
        rows = [_select(r, params.get("$select", "*")) for r in rows]
        return 200, {}, json.dumps(rows).encode(), len(rows)


def _sort_key(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    return (value is None, "" if value is None else str(value))


def _matches(row: dict[str, Any], where: str) -> bool:
    if not where.strip():
        return True
    parts = re.split(r"\s+AND\s+", where.strip())
    for part in parts:
        m = _COMPARISON.fullmatch(part)
        if m is None:
            raise ValueError(f"cannot parse $where clause {part!r}")
        name, op, literal = m.group(1), m.group(2), m.group(3).replace("''", "'")
        value = row.get(name)
        if value is None:
            return False
        if name == ":updated_at":
            left: Any = dt.datetime.fromisoformat(str(value).rstrip("Z"))
            right: Any = dt.datetime.fromisoformat(literal.rstrip("Z"))
        else:
            left, right = str(value), literal
        ok = {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right, "=": left == right}[op]
        if not ok:
            return False
    return True


def _select(row: dict[str, Any], select: str) -> dict[str, Any]:
    wanted = [s.strip() for s in select.split(",") if s.strip()]
    out: dict[str, Any] = {}
    for w in wanted:
        if w == ":*":
            out.update({k: v for k, v in row.items() if k.startswith(":")})
        elif w == "*":
            out.update({k: v for k, v in row.items() if not k.startswith(":")})
        elif w in row:
            out[w] = row[w]
    return out


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if params.get("$order") == ":updated_at DESC":  # a poll starts by asking for the newest update
                with server.lock:
                    server.polls_started += 1
                    change = server.before_poll.pop(server.polls_started, None)
                if change is not None:
                    change()
            fault = server._fault_for(params)
            status, extra, body, rows = server.answer(parsed.path, params)
            shown = fault.kind if fault else ""
            if fault is not None and fault.kind == "status":
                status, body, rows = int(fault.arg), json.dumps({"error": True, "message": "injected"}).encode(), 0
                if status == 429:
                    extra = {"Retry-After": "1"}
            elif fault is not None and fault.kind == "throttle":
                status, body, rows = 429, b'{"error": true, "message": "slow down"}', 0
                extra = {"Retry-After": f"{fault.arg:g}"}
            elif fault is not None and fault.kind == "repeat" and server._last_page is not None:
                body = server._last_page
            with server.lock:
                server.log.append(Logged(time.monotonic(), params, headers, status, rows, shown))
                if status == 200 and "*" in params.get("$select", "*") and shown != "repeat":
                    server._last_page = body
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.arg)  # logged at arrival: a client that gave up has still been answered late
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for k, v in extra.items():
                    self.send_header(k, v)
                if fault is not None and fault.kind == "truncate":
                    body = body[: max(len(body) // 2, 1)]
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif fault is not None and fault.kind == "cut":
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout): nothing to do

    return Handler


def main() -> None:
    """Serve the first ``--rows`` Chicago records until interrupted (for trying `crimelens watch` by hand)."""
    import argparse
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument(
        "--data", default=os.environ.get("CRIMELENS_DATA", str(Path(__file__).parents[2] / "shared/data"))
    )
    parser.add_argument("--fail-every", type=int, default=0, help="answer 500 to every n-th page request (0: never)")
    args = parser.parse_args()
    server = FeedServer(chicago_records(Path(args.data), args.rows))
    server.port = args.port
    if args.fail_every:
        for n in range(args.fail_every - 1, 10_000, args.fail_every):
            server.inject("status", times=1, arg=500, after=n)
    print(f"serving {args.rows} records at {server.start()}/resource/{DATASET}.json", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
