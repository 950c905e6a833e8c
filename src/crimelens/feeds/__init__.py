"""Live open-data feeds: a Socrata SODA client, presets for known crime datasets, and the polling loop.

:mod:`~crimelens.feeds.soda` reads a dataset in ordered pages with bounded retries;
:mod:`~crimelens.feeds.presets` says where each known dataset lives and how its fields map into the canonical
incidents; :mod:`~crimelens.feeds.watch` polls a feed into the warehouse, page by page, through the same
mapping and validation as files (:func:`crimelens.sources.incidents.map_incidents`), each page committed with
the feed's watermark in one transaction (:mod:`crimelens.warehouse.feeds`). See ``docs/feeds.md``.
"""

from crimelens.feeds.presets import PRESETS, FeedPreset, get_preset, preset_names
from crimelens.feeds.soda import Page, RetryPolicy, SodaClient
from crimelens.feeds.watch import BatchHook, BatchSummary, Feed, PollSummary, WatchResult, on_batch, poll, watch

__all__ = [
    "PRESETS",
    "BatchHook",
    "BatchSummary",
    "Feed",
    "FeedPreset",
    "Page",
    "PollSummary",
    "RetryPolicy",
    "SodaClient",
    "WatchResult",
    "get_preset",
    "on_batch",
    "poll",
    "preset_names",
    "watch",
]
