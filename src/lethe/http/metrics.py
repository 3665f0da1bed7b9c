"""Prometheus metrics in the text exposition format (version 0.0.4), written here: no dependency.

Families: ``lethe_http_requests_total`` (counter, by method, route template and status),
``lethe_http_request_duration_seconds`` (histogram, by route template), ``lethe_searches_total``,
``lethe_ingest_images_total`` (counters), and gauges read when scraped: ``lethe_index_vectors``,
``lethe_faces``, ``lethe_images``, ``lethe_sources``. Labels hold route templates, never paths with
ids, so the number of series stays bounded.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Labels = tuple[tuple[str, str], ...]


def escape_label(value: str) -> str:
    """Escape a label value: backslash, double quote and line feed."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels) + "}"


class Metrics:
    """The service's metrics. Thread-safe; ``render()`` gives the exposition text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[Labels, float] = defaultdict(float)
        self._durations: dict[str, list[float]] = {}  # route -> per-bucket counts + [sum, count]
        self.searches = 0
        self.ingest_images = 0
        self._gauges: list[tuple[str, str, Callable[[], float]]] = []

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(("method", method), ("route", route), ("status", str(status)))] += 1
            counts = self._durations.setdefault(route, [0.0] * (len(BUCKETS) + 2))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-2] += seconds
            counts[-1] += 1

    def count_search(self) -> None:
        with self._lock:
            self.searches += 1

    def count_ingested(self, images: int) -> None:
        if images > 0:
            with self._lock:
                self.ingest_images += images

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge whose value is read when metrics are scraped."""
        self._gauges.append((name, help_text, read))

    def render(self) -> str:
        lines: list[str] = []

        def family(
            name: str, kind: str, help_text: str, samples: Iterable[tuple[str, Labels, float]]
        ) -> None:
            lines.append(f"# HELP {name} {escape_help(help_text)}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{sample}{_labels(labels)} {format_value(v)}" for sample, labels, v in samples)

        with self._lock:
            requests = sorted(self._requests.items())
            durations = sorted((route, list(counts)) for route, counts in self._durations.items())
            searches, ingested = self.searches, self.ingest_images
        family(
            "lethe_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route template and status.",
            (("lethe_http_requests_total", labels, count) for labels, count in requests),
        )
        histogram: list[tuple[str, Labels, float]] = []
        for route, counts in durations:
            for bound, count in zip(BUCKETS, counts, strict=False):
                histogram.append(
                    (
                        "lethe_http_request_duration_seconds_bucket",
                        (("route", route), ("le", format_value(bound))),
                        count,
                    )
                )
            histogram.append(
                ("lethe_http_request_duration_seconds_bucket", (("route", route), ("le", "+Inf")), counts[-1])
            )
            histogram.append(("lethe_http_request_duration_seconds_sum", (("route", route),), counts[-2]))
            histogram.append(("lethe_http_request_duration_seconds_count", (("route", route),), counts[-1]))
        family(
            "lethe_http_request_duration_seconds",
            "histogram",
            "Time to answer an HTTP request, by route template.",
            histogram,
        )
        for name, help_text, total in (
            ("lethe_searches_total", "Searches run through the service.", searches),
            ("lethe_ingest_images_total", "Photos processed by ingest jobs of the service.", ingested),
        ):
            family(name, "counter", help_text, [(name, (), float(total))])
        for name, help_text, read in self._gauges:
            try:
                value = float(read())
            except Exception:  # noqa: BLE001 - a failing gauge must not break the scrape
                value = math.nan
            family(name, "gauge", help_text, [(name, (), value)])
        return "\n".join(lines) + "\n"
