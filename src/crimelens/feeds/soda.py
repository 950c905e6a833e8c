"""A Socrata SODA client: ordered pages, bounded retries, and one clear line when a feed cannot be read.

Every request asks for an order (``$order=:id``): without one, Socrata returns rows in no fixed order and
paging repeats some rows and skips others. Pages are read by keyset on ``:id`` (``:id > 'last id read'``),
which stays correct when records are added, updated or deleted between two pages; ``$limit``/``$offset``
paging is available too (``paging="offset"``).

A failed request is retried with exponential backoff and random jitter (stamina): on 429 (waiting what the
server's ``Retry-After`` asks, up to ``feed_wait_max``), on 5xx answers, on timeouts and lost connections,
and on an answer that is not complete JSON (a truncated body). Attempts and total time are bounded
(``feed_attempts``, ``feed_retry_time``), each attempt has a deadline for its last byte (``feed_timeout``):
the client never hangs. When the retries are used up, :class:`~crimelens.errors.SourceError` says what
failed, how often, and that nothing from that page was written. Other 4xx answers (a wrong dataset id, a
refused app token, a rejected query) are not retried.

References
----------
Socrata, "Paging through Data" and "System Fields" (SODA 2.1 documentation, dev.socrata.com): ``$order``,
``$limit``, ``$offset``, ``:id`` and ``:updated_at``; "Application Tokens" (header ``X-App-Token``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crimelens.config import get_setting
from crimelens.errors import ConfigError, SourceError

if TYPE_CHECKING:
    import httpx

__all__ = ["Page", "RetryPolicy", "SodaClient", "format_timestamp", "parse_timestamp"]

log = logging.getLogger(__name__)

#: What the client reports while it waits (e.g. to the terminal): one sentence.
Notify = Callable[[str], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request is tried: attempts, total time, waits, and each attempt's deadline (seconds)."""

    attempts: int = 6
    total: float = 300.0
    wait_initial: float = 1.0
    wait_max: float = 60.0
    timeout: float = 60.0

    def __post_init__(self) -> None:
        checks = {
            "feed_attempts": (self.attempts, self.attempts >= 1, "an integer of at least 1"),
            "feed_retry_time": (self.total, self.total > 0, "a number of seconds above 0"),
            "feed_wait_initial": (self.wait_initial, self.wait_initial >= 0, "a number of seconds of at least 0"),
            "feed_wait_max": (self.wait_max, self.wait_max >= 0, "a number of seconds of at least 0"),
            "feed_timeout": (self.timeout, self.timeout > 0, "a number of seconds above 0"),
        }
        for name, (value, ok, allowed) in checks.items():
            if not ok:
                raise ConfigError(f"setting {name}: expected {allowed}, got {value!r}")

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        """The policy the ``feed_*`` settings describe (environment, config file, defaults)."""
        return cls(
            attempts=int(get_setting("feed_attempts")),
            total=float(get_setting("feed_retry_time")),
            wait_initial=float(get_setting("feed_wait_initial")),
            wait_max=float(get_setting("feed_wait_max")),
            timeout=float(get_setting("feed_timeout")),
        )


@dataclass(frozen=True)
class Page:
    """One page of records as served: the parsed rows, the JSON text, its digest, and each row's ``:id``."""

    rows: list[dict[str, Any]]
    text: str
    ids: list[str]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def updated_at(self) -> list[dt.datetime]:
        return [parse_timestamp(str(r[":updated_at"])) for r in self.rows]


class _Retryable(Exception):
    """A failure worth trying again (the reason in words, and the wait the server asked for)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_timestamp(text: str) -> dt.datetime:
    """A SODA timestamp (``2024-01-05T12:34:56.789Z``, or floating without the ``Z``) as naive UTC."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def format_timestamp(value: dt.datetime) -> str:
    """A SoQL timestamp literal, to the millisecond (``2024-01-05T12:34:56.789``)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class SodaClient:
    """Read one Socrata dataset (``{base_url}/resource/{dataset}.json``) with ordered pages and bounded retries.

    Parameters
    ----------
    base_url
        The portal, e.g. ``https://data.cityofchicago.org`` (tests give ``http://127.0.0.1:PORT``).
    dataset
        The dataset's four-by-four id, e.g. ``ijzp-q8t2``.
    app_token
        Sent as ``X-App-Token`` when not empty.
    policy
        Attempts, total retry time, waits and the per-request deadline.
    notify
        Told, in one sentence, about each failed attempt that will be retried.
    name
        What the feed is called in messages.
    """

    def __init__(
        self,
        base_url: str,
        dataset: str,
        *,
        app_token: str = "",
        policy: RetryPolicy | None = None,
        notify: Notify | None = None,
        name: str = "feed",
    ) -> None:
        import httpx

        base = base_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ConfigError(f"feed URL: expected http:// or https:// followed by a host, got {base_url!r}")
        self.url = f"{base}/resource/{dataset}.json"
        self.name = name
        self.policy = policy or RetryPolicy.from_settings()
        self.notify = notify
        headers = {"Accept": "application/json", "User-Agent": "crimelens"}
        if app_token:
            headers["X-App-Token"] = app_token
        timeout = httpx.Timeout(self.policy.timeout)
        self._http = httpx.Client(headers=headers, timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SodaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ------------------------------------------------------------------------------------------------
    def newest_update(self) -> dt.datetime | None:
        """The latest ``:updated_at`` of the dataset (None when it holds no records)."""
        page = self.get(
            {"$select": ":updated_at", "$order": ":updated_at DESC", "$limit": "1"}, "the feed's latest update time"
        )
        if not page.rows:
            return None
        value = page.rows[0].get(":updated_at")
        if not isinstance(value, str):
            raise SourceError(f"{self.name} ({self.url}): the answer has no :updated_at field; is this a SODA feed?")
        return parse_timestamp(value)

    def records(
        self,
        *,
        where: Sequence[str],
        limit: int,
        after: str | None = None,
        offset: int | None = None,
        select: str = ":*, *",
        what: str = "page",
    ) -> Page:
        """One page of records ordered by ``:id``: after the id ``after`` (keyset) or from ``offset``.

        A page holding the id it was asked to start after, or an id twice, is a server fault and is retried.
        """
        clauses = list(where)
        if after is not None and offset is None:
            clauses.append(f":id > {_literal(after)}")
        params = {"$select": select, "$order": ":id", "$limit": str(limit)}
        if clauses:
            params["$where"] = " AND ".join(f"({c})" for c in clauses)
        if offset is not None:
            params["$offset"] = str(offset)

        def check(page: Page) -> None:
            if any(":id" not in r for r in page.rows):
                raise _Retryable("a record has no :id field (is $select honoured?)")
            if len(set(page.ids)) != len(page.ids):
                raise _Retryable("the page holds the same record twice (pages out of order?)")
            if after is not None and after in page.ids:
                raise _Retryable(f"the page repeats record {after}, already read (a page served twice?)")

        return self.get(params, what, check=check)

    # -- one request, retried ------------------------------------------------------------------------------------
    def get(self, params: dict[str, str], what: str, *, check: Callable[[Page], None] | None = None) -> Page:
        """GET the dataset with ``params``, retried per the policy; a SourceError line when it cannot be read."""
        import stamina

        p = self.policy
        attempts = 0
        started = time.monotonic()

        def backoff(exc: Exception) -> bool | float:
            if not isinstance(exc, _Retryable):
                return False
            if self.notify is not None and attempts < p.attempts:
                wait = "" if exc.retry_after is None else f", waiting {min(exc.retry_after, p.wait_max):g} s as asked"
                self.notify(f"{what}: {exc.reason}; retrying (attempt {attempts + 1} of {p.attempts}{wait})")
            if exc.retry_after is not None:
                return min(max(exc.retry_after, 0.0), p.wait_max)
            return True

        try:
            for attempt in stamina.retry_context(
                on=backoff,
                attempts=p.attempts,
                timeout=p.total,
                wait_initial=p.wait_initial,
                wait_max=p.wait_max,
                wait_jitter=p.wait_initial,
            ):
                with attempt:
                    attempts += 1
                    page = self._once(params)
                    if check is not None:
                        check(page)
                    return page
        except _Retryable as exc:
            took = time.monotonic() - started
            tries = "attempt" if attempts == 1 else "attempts"
            raise SourceError(
                f"{self.name} ({self.url}): {what} could not be read after {attempts} {tries} in {took:.1f} s "
                f"({exc.reason}); nothing from it was written, and the next run resumes from the last page "
                "committed"
            ) from None
        raise AssertionError("unreachable: stamina yields attempts until one succeeds or raises")  # pragma: no cover

    def _once(self, params: dict[str, str]) -> Page:
        import httpx

        deadline = time.monotonic() + self.policy.timeout
        try:
            with self._http.stream("GET", self.url, params=params) as response:
                self._check_status(response)
                chunks: list[bytes] = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise _Retryable(f"no complete answer within {self.policy.timeout:g} s")
                body = b"".join(chunks)
        except httpx.TimeoutException:
            raise _Retryable(f"no answer within {self.policy.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"the connection failed ({type(exc).__name__}: {exc or 'no detail'})") from None
        return self._parse(body)

    def _check_status(self, response: httpx.Response) -> None:
        code = response.status_code
        if code < 400:
            return
        if code == 429:
            raise _Retryable("the server asked to slow down (429 Too Many Requests)", _retry_after(response))
        if code >= 500:
            raise _Retryable(f"the server answered {code} {response.reason_phrase}", _retry_after(response))
        response.read()
        detail = _error_detail(response)
        if code in (401, 403):
            raise SourceError(
                f"{self.name} ({self.url}): the server refused access ({code}{detail}); check the app token "
                "(setting feed_app_token)"
            )
        if code == 404:
            raise SourceError(
                f"{self.name} ({self.url}): no such dataset here (404{detail}); check --url and the preset"
            )
        raise SourceError(f"{self.name} ({self.url}): the server rejected the query ({code}{detail})")

    def _parse(self, body: bytes) -> Page:
        try:
            text = body.decode("utf-8")
            rows = json.loads(text)
        except UnicodeDecodeError as exc:
            raise _Retryable(f"the answer is not UTF-8 text (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise _Retryable(
                f"the answer is not complete JSON ({exc.msg} at byte {exc.pos} of {len(body):,}; truncated?)"
            ) from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise _Retryable("the answer is not a list of records")
        return Page(rows, text, [str(r.get(":id", "")) for r in rows])


def _retry_after(response: httpx.Response) -> float | None:
    """The server's Retry-After in seconds (a number of seconds or an HTTP date), None when absent or unreadable."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


def _error_detail(response: httpx.Response) -> str:
    """SODA's error message from a JSON error body, as ': message' (or nothing)."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        message = data.get("message") or data.get("error")
        if isinstance(message, str) and message.strip():
            return f": {message.strip()[:200]}"
    return ""
