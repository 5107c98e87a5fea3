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
