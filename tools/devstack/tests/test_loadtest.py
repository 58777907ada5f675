"""How a load run's memory is read: single readings swing, the settled figure follows a trend."""

from __future__ import annotations

from rag_devstack.loadtest import rss_growth_mb, settled_rss_mb


def test_the_settled_memory_is_the_middle_of_the_last_readings_not_a_peak_or_trough() -> None:
    swinging = [960.0, 1032.0, 959.0, 1008.0, 996.0, 1012.0, 959.0, 1033.0, 1007.0]
    assert settled_rss_mb(swinging) == 1007.0
    assert settled_rss_mb([*swinging, 959.0]) == 1007.0


def test_the_settled_memory_follows_steady_growth() -> None:
    leaking = [500.0 + 10 * second for second in range(12)]
    assert settled_rss_mb(leaking) == 595.0
    assert settled_rss_mb([700.0]) == 700.0


def test_growth_is_measured_from_the_warm_ups_peak() -> None:
    warm_up = [690.0, 880.0, 940.0, 964.0, 913.0, 1010.0]
    assert rss_growth_mb(warm_up, [960.0, 1032.0, 959.0, 1008.0, 996.0, 1012.0]) == -6.0, "a swing, no growth"
    assert rss_growth_mb(warm_up, [1040.0, 1060.0, 1080.0]) == 70.0
