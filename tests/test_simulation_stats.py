"""Confidence intervals stay inside their figure's domain, and say which method made them."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egovlab.simulation.stats import count_estimate, estimate, share_estimate

finite = st.floats(min_value=0, max_value=1e9, allow_nan=False)
shares = st.floats(min_value=0, max_value=1, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=30))
@settings(max_examples=300, deadline=None)
def test_non_negative_figures_never_get_a_negative_bound(values):
    e = estimate(values, "nonneg")
    assert 0 <= e.low <= e.mean <= e.high or math.isclose(e.low, e.high)
    assert e.low >= 0


@given(st.lists(shares, min_size=1, max_size=30))
@settings(max_examples=300, deadline=None)
def test_shares_stay_within_zero_and_one(values):
    e = estimate(values, "share")
    assert 0 <= e.low and e.high <= 1 and e.low <= e.mean + 1e-12 and e.mean <= e.high + 1e-12


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=30))
@settings(max_examples=300, deadline=None)
def test_counts_get_a_poisson_interval_never_below_zero(counts):
    e = count_estimate(counts)
    assert e.method == "poisson-exact" and 0 <= e.low <= e.mean <= e.high


@given(st.integers(min_value=1, max_value=10**6), st.data())
@settings(max_examples=300, deadline=None)
def test_wilson_shares_stay_within_zero_and_one(trials, data):
    successes = data.draw(st.integers(min_value=0, max_value=trials))
    e = share_estimate(successes, trials, 1)
    assert 0 <= e.low <= e.mean <= e.high <= 1 and e.method == "wilson"


def test_the_interval_from_the_issue_is_no_longer_negative():
    # `simulate` printed "dc failures 0.1 [-0.1, 0.3]" and "unavailable requests 4.6 [-5.8, 15.1]".
    dc = count_estimate([0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert dc.low == pytest.approx(0.00253, abs=1e-5) and dc.mean == pytest.approx(0.1)
    assert dc.high == pytest.approx(0.5572, abs=1e-3)  # Garwood: 1 event in 10 replications
    lost = estimate([0.0] * 9 + [46.0], "nonneg")
    assert lost.method == "bootstrap" and lost.low == 0 and lost.high <= 46


def test_student_t_where_it_fits_and_known_values():
    e = estimate([1.0, 2.0, 3.0, 4.0], "nonneg")
    assert e.method == "student-t"
    assert e.half_width == pytest.approx(3.182446 * 1.290994 / 2, rel=1e-5)
    w = share_estimate(8, 10, 1)  # Wilson 95 % of 8/10: [0.4902, 0.9433]
    assert (round(w.low, 4), round(w.high, 4)) == (0.4902, 0.9433)
    c = count_estimate([3])  # Garwood 95 % for 3 events: [0.6187, 8.7673]
    assert (round(c.low, 4), round(c.high, 4)) == (0.6187, 8.7673)
