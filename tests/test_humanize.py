"""Host lists as people read them (irx.humanize; durations: tests/test_report.py::test_format_duration)."""

from __future__ import annotations

import pytest

from irx import humanize


@pytest.mark.parametrize(
    ("names", "shown", "text"),
    [
        ((), 4, "the control node"),
        (("web1",), 4, "web1"),
        (("web1", "web2", "web3", "web4"), 4, "web1, web2, web3, web4"),
        (("web1", "web2", "web3", "web4", "web5"), 4, "web1, web2, web3 and 2 more"),
        (tuple(f"h{i}" for i in range(10)), 2, "h0 and 9 more"),
    ],
)
def test_hosts(names: tuple[str, ...], shown: int, text: str) -> None:
    assert humanize.hosts(names, shown=shown) == text


def test_durations_never_go_negative_and_none_is_the_given_mark() -> None:
    assert humanize.duration(-0.3) == "0.0s"
    assert humanize.duration(None, missing="-") == "-"


@pytest.mark.parametrize(
    ("text", "limit", "short"),
    [
        ("restart the app", 40, "restart the app"),
        ("restart the application server now", 20, "restart the…"),
        ("Count connections, per host: web1", 30, "Count connections, per host…"),
        ("averyveryverylongsinglewordwithoutspaces", 12, "averyveryve…"),
        ("one two\nthree four", 12, "one two…"),
    ],
)
def test_shorten_cuts_at_a_word_boundary_with_an_ellipsis(text: str, limit: int, short: str) -> None:
    assert humanize.shorten(text, limit) == short
    assert len(humanize.shorten(text, limit)) <= limit


def test_notifications_write_durations_the_same_way() -> None:
    from irx.notify import format_duration

    assert [format_duration(s) for s in (9, 65, 900, 14400, 7384.6)] == ["9.0s", "1m 05s", "15m", "4h", "2h 03m"]
