"""Range requests against a file of known size (RFC 9110 section 14)."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.recordings.ranges import Requested, Span, parse, resolve, unsatisfied


@pytest.mark.parametrize(
    ("header", "requested"),
    [
        ("bytes=0-99", Requested(0, 99)),
        ("bytes=100-", Requested(100, None)),
        ("bytes=-500", Requested(None, 500)),
        (" bytes = 5 - 9 ", Requested(5, 9)),
    ],
)
def test_a_single_byte_range_is_read(header: str, requested: Requested) -> None:
    assert parse(header) == requested


@pytest.mark.parametrize(
    "header", [None, "", "bytes=0-1,5-9", "items=0-9", "bytes=9-5", "bytes=-", "bytes=x-1"]
)
def test_anything_else_is_ignored_and_the_whole_file_served(header: str | None) -> None:
    assert parse(header) is None


def test_a_range_past_the_end_is_cut_to_the_end() -> None:
    assert resolve(Requested(90, 500), 100) == Span(90, 99, 100)


def test_a_suffix_longer_than_the_file_is_the_whole_file() -> None:
    assert resolve(Requested(None, 500), 100) == Span(0, 99, 100)


@pytest.mark.parametrize("requested", [Requested(100, None), Requested(100, 200), Requested(None, 0)])
def test_a_range_that_starts_past_the_end_is_unsatisfiable(requested: Requested) -> None:
    assert resolve(requested, 100) is None


def test_the_headers_of_an_answer() -> None:
    span = Span(10, 19, 100)
    assert (span.content_range(), span.length) == ("bytes 10-19/100", 10)
    assert unsatisfied(100) == "bytes */100"
    assert Requested(None, 5).header() == "bytes=-5"


def test_a_single_byte_range_is_a_range() -> None:
    assert parse("bytes=5-5") == Requested(5, 5)


def test_an_open_range_runs_to_the_end_and_a_closed_one_stops_at_its_last_byte() -> None:
    assert resolve(Requested(10, None), 100) == Span(10, 99, 100)
    assert resolve(Requested(10, 20), 100) == Span(10, 20, 100)


def test_a_one_byte_suffix_is_the_last_byte() -> None:
    assert resolve(Requested(None, 1), 100) == Span(99, 99, 100)


def test_nothing_of_an_empty_file_can_be_served() -> None:
    assert resolve(Requested(None, 5), 0) is None
    assert resolve(Requested(0, None), 0) is None


def test_an_open_range_is_sent_on_as_written() -> None:
    assert Requested(5, None).header() == "bytes=5-"


def test_ranges_and_spans_cannot_be_changed() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Requested(1, 2).first = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Span(1, 2, 3).end = 3  # type: ignore[misc]
