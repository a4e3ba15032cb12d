"""Prometheus text exposition (format 0.0.4) of the service's counters: requests by route and status,
a latency histogram, the queue depth and cache hits. Written out here rather than pulling in
prometheus_client for five series."""

from __future__ import annotations

import bisect
import threading
from collections import Counter

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: Counter = Counter()
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.queue_depth = 0
        self.cache_hits = 0

    def observe(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, status)] += 1
            self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.latency_sum += seconds
            self.latency_count += 1

    def set_queue(self, depth: int) -> None:
        self.queue_depth = depth

    def cache_hit(self) -> None:
        with self._lock:
            self.cache_hits += 1

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP pyserini_splare_requests_total HTTP requests by route and status.",
                     "# TYPE pyserini_splare_requests_total counter"]
            for (route, status), n in sorted(self.requests.items()):
                lines.append(f'pyserini_splare_requests_total{{route="{route}",status="{status}"}} {n}')
            lines += ["# HELP pyserini_splare_request_seconds Request latency.",
                      "# TYPE pyserini_splare_request_seconds histogram"]
            cum = 0
            for le, n in zip((*[f"{b:g}" for b in BUCKETS], "+Inf"), self.buckets):
                cum += n
                lines.append(f'pyserini_splare_request_seconds_bucket{{le="{le}"}} {cum}')
            lines += [f"pyserini_splare_request_seconds_sum {self.latency_sum:.6f}",
                      f"pyserini_splare_request_seconds_count {self.latency_count}",
                      "# HELP pyserini_splare_queue_depth Searches in flight.",
                      "# TYPE pyserini_splare_queue_depth gauge",
                      f"pyserini_splare_queue_depth {self.queue_depth}",
                      "# HELP pyserini_splare_cache_hits_total Answers served from the LRU cache.",
                      "# TYPE pyserini_splare_cache_hits_total counter",
                      f"pyserini_splare_cache_hits_total {self.cache_hits}"]
        return "\n".join(lines) + "\n"
