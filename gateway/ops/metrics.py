"""Prometheus metrics, one registry per gateway (tests run several)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class CountByLabel:
    """A counter with one label, each label's child looked up once.

    ``Counter.labels`` takes a lock and builds a key on every call; the hot
    paths count every signal, event and SIP message. Only for labels from a
    bounded set (a child is kept per label, like the counter's own).
    """

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[str, Counter] = {}

    def inc(self, label: str) -> None:
        child = self._children.get(label)
        if child is None:
            child = self._children[label] = self._counter.labels(label)
        child.inc()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.signals = Counter(
            "gateway_signals_total", "Signals accepted, by source", ["source"], registry=self.registry
        )
        self.events = Counter(
            "gateway_events_total", "SDK events emitted, by type", ["type"], registry=self.registry
        )
        self.count_signal = CountByLabel(self.signals)
        self.count_event = CountByLabel(self.events)
        self.rejected = Counter(
            "gateway_rejected_total",
            "Requests or messages refused, by where and why",
            ["where", "reason"],
            registry=self.registry,
        )
        self.overflows = Counter(
            "gateway_stream_overflows_total",
            "Streams cut off because their client did not keep up",
            registry=self.registry,
        )
        self.apply_seconds = Histogram(
            "gateway_signal_apply_seconds",
            "Time to advance a call and publish its events",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5),
            registry=self.registry,
        )

    def gauge(
        self, name: str, doc: str, labels: list[str], read: Callable[[], dict[tuple[str, ...], float]]
    ) -> None:
        """A gauge read at scrape time from state a component already holds."""
        self.registry.register(_ReadGauge(name, doc, labels, read))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ReadGauge(Collector):
    def __init__(
        self, name: str, doc: str, labels: list[str], read: Callable[[], dict[tuple[str, ...], float]]
    ) -> None:
        self._name, self._doc, self._labels, self._read = name, doc, labels, read

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self._name, self._doc, labels=self._labels)
        for key, value in self._read().items():
            family.add_metric(list(key), value)
        yield family
