"""Block-wise symmetric matrices and Mehler's series (gmstep.theory_series) against plain formulas:
Horner's scheme on blocks against the term-by-term sum over the whole matrix, the pairs sent to
quadrature against the explicit truncation bound, and the mirrored lower triangle against a
matrix computed whole."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gmstep import theory_series as ts


def _correlations(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, k))
    a[1] = a[0] + 0.03 * a[1]
    cov = a @ a.T / k + 1e-3 * np.eye(k)
    s = np.sqrt(np.diag(cov))
    return np.clip(cov / np.outer(s, s) / 3.0, -1.0, 1.0)


@pytest.mark.parametrize("block", [None, 3 * 30])  # one block; blocks of 8 rows (the last of 6)
def test_mehler_horner_equals_term_by_term_sum(monkeypatch, block):
    if block is not None:
        monkeypatch.setattr(ts, "_BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(21)
    k, deg = 30, 30
    coef = rng.standard_normal((k, deg + 1)) * 0.7 ** np.arange(deg + 1)
    coef[:, 2::2] *= 1e-20  # zero up to rounding, as the even degrees of an odd activation
    r = _correlations(k, 22)
    fact = np.array([math.factorial(j) for j in range(deg + 1)], dtype=float)
    second = (coef**2 / fact).sum(axis=1) + 0.1
    direct = sum(np.outer(coef[:, j] / fact[j], coef[:, j]) * r**j for j in range(deg + 1))
    got = ts.mehler_sum(coef, r, second)
    np.testing.assert_array_equal(got, got.T)
    np.testing.assert_allclose(got, direct, rtol=1e-13, atol=1e-16)


def test_skipped_degrees_are_those_below_the_cutoff():
    coef = np.array([[1.0, 1e-12, 0.5], [2.0, -1e-12, 0.1]])
    second = np.array([1.0, 5.0])
    # degree 1: max c^2 / 1! = 1e-24 <= 1e-18 * 5; degrees 0 and 2 matter (their l! returned)
    np.testing.assert_array_equal(ts.mehler_degrees(coef, second), [1.0, 0.0, 2.0])


def test_pairs_sent_to_quadrature_are_those_of_the_truncation_bound():
    rng = np.random.default_rng(23)
    k, deg = 40, 30
    coef = rng.standard_normal((k, deg + 1)) * 0.8 ** np.arange(deg + 1)
    fact = np.array([math.factorial(j) for j in range(deg + 1)], dtype=float)
    second = (coef**2 / fact).sum(axis=1) + rng.uniform(1e-6, 1e-2, k)
    r = np.clip(rng.uniform(-1.0, 1.0, (k, k)) ** 3, -1.0, 1.0)
    r = (r + r.T) / 2
    tail = np.sqrt(second - (coef**2 / fact).sum(axis=1))
    bound = np.outer(tail, tail) * np.abs(r) ** (deg + 1)
    expected = {(i, j) for i in range(k) for j in range(i) if bound[i, j] > ts.SERIES_TOL}
    tau = ts.series_thresholds(coef, second)
    ib, jb = ts.series_fails(tau, r)
    assert set(zip(ib.tolist(), jb.tolist(), strict=True)) == expected
    assert 0 < len(expected) < k * (k - 1) // 2  # both kinds present
    # the same pairs found block by block (rows i0:i1, columns 0:i1)
    found = set()
    for i0, i1 in [(0, 7), (7, 19), (19, 40)]:
        bi, bj = ts.series_fails(tau, r[i0:i1, :i1], i0)
        found |= set(zip(bi.tolist(), bj.tolist(), strict=True))
    assert found == expected


def test_symmetric_by_rows_mirrors_the_lower_triangle(monkeypatch):
    monkeypatch.setattr(ts, "_BLOCK_ELEMENTS", 4 * 23)
    rng = np.random.default_rng(5)
    full = rng.standard_normal((23, 23))  # not symmetric: only its lower triangle may be read
    seen = []

    def fill(i0, i1):
        seen.append((i0, i1))
        return full[i0:i1, :i1].copy()

    got = ts.symmetric_by_rows(23, fill)
    lower = np.tril(full)
    np.testing.assert_array_equal(got, lower + np.tril(full, -1).T)
    assert seen == ts.row_blocks(23) and len(seen) == 3  # 8 rows per block (the minimum)
    assert [i1 - i0 for i0, i1 in seen] == [8, 8, 7]


def test_block_series_stops_where_its_remainder_bound_allows():
    """Weak correlations: the sum stops early, within REMAINDER_TOL of the whole series; one
    strongly correlated pair in the block keeps every degree, unless quadrature answers for it."""
    rng = np.random.default_rng(41)
    k, deg = 12, 30
    fact = np.array([math.factorial(j) for j in range(deg + 1)], dtype=float)
    coef = rng.standard_normal((k, deg + 1)) * 0.9 ** np.arange(deg + 1)
    second = (coef**2 / fact).sum(axis=1) + 1e-4  # what the degrees above 30 carry
    r = rng.uniform(-0.15, 0.15, (k, k))
    r = (r + r.T) / 2
    np.fill_diagonal(r, 1.0)
    full = sum(np.outer(coef[:, j] / fact[j], coef[:, j]) * r**j for j in range(deg + 1))
    series = ts.MehlerSeries(coef, second)
    weak, pairs = series.block(0, k, r)
    top = series.top_degree(0, k, float(np.max(np.abs(r - np.eye(k)))))
    assert 5 < top < 20 and len(pairs[0]) == 0
    off = ~np.eye(k, dtype=bool)
    assert np.max(np.abs(weak - full)[off]) <= ts.REMAINDER_TOL
    assert np.max(np.abs(weak - full)[off]) > 0  # it did stop early
    strong = r.copy()
    strong[3, 7] = strong[7, 3] = 0.99999
    assert series.top_degree(0, k, 0.99999) == deg
    np.testing.assert_allclose(series.block(0, k, strong)[0][3, 7], full[3, 7] + (coef[3] * coef[7] / fact) @ (
        0.99999 ** np.arange(deg + 1) - r[3, 7] ** np.arange(deg + 1)), rtol=1e-13)
    values, (ib, jb) = series.block(0, k, strong, quadrature=True)  # the pair goes to quadrature, the rest stops early
    assert list(zip(ib.tolist(), jb.tolist(), strict=True)) == [(7, 3)]
    np.testing.assert_allclose(values[off & (np.abs(strong) < 0.5)], weak[off & (np.abs(strong) < 0.5)], rtol=0, atol=0)
