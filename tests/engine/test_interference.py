"""interference_matrix equals the pairwise formula; top/bottom pairs equal brute force."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine import Lattice


def lattice_from(seed, n, coherence=None, phases=None):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 1, n) if coherence is None else coherence
    phi = rng.uniform(-20, 20, n) if phases is None else phases
    return Lattice(rng.uniform(0.1, 4, n), phi, c)


def naive_matrix(lat):
    phi, c = lat.phase, lat.coherence
    n = len(lat)
    return np.array([[np.cos(phi[i] - phi[j]) * c[i] * c[j] for j in range(n)] for i in range(n)]).reshape(n, n)


def brute_pairs(lat, sign=1.0):
    m = naive_matrix(lat)
    i, j = np.triu_indices(len(lat), 1)
    return np.sort(sign * m[i, j])[::-1] * sign, m


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 120])
def test_matrix_equals_pairwise_formula(n):
    lat = lattice_from(n, n)
    m = lat.interference_matrix()
    assert m.shape == (n, n)
    np.testing.assert_allclose(m, naive_matrix(lat), atol=1e-12)
    np.testing.assert_allclose(lat.interference_row_sums(), naive_matrix(lat).sum(axis=1), atol=1e-9)
    sub = lat.interference_matrix(indices=[n - 1, 0], dtype=np.float32) if n else None
    if n:
        assert sub.dtype == np.float32 and sub.shape == (2, 2)
        np.testing.assert_allclose(sub, naive_matrix(lat)[np.ix_([n - 1, 0], [n - 1, 0])], atol=1e-6)


def check_pairs(lat, k, pairs, sign):
    expected, m = brute_pairs(lat, sign)
    assert len(pairs) == min(k, len(expected))
    values = [v for _, _, v in pairs]
    np.testing.assert_allclose(values, expected[: len(pairs)], atol=1e-12)
    assert len({(i, j) for i, j, _ in pairs}) == len(pairs)
    for i, j, v in pairs:
        assert i < j
        assert v == pytest.approx(m[i, j], abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 60), k=st.integers(0, 2000), seed=st.integers(0, 10**6))
def test_top_and_bottom_equal_brute_force(n, k, seed):
    lat = lattice_from(seed, n)
    check_pairs(lat, k, lat.top_interference(k), 1.0)
    check_pairs(lat, k, lat.bottom_interference(k), -1.0)


@pytest.mark.parametrize("case", ["equal_coherence", "ties", "zeros", "identical"])
def test_top_pairs_with_degenerate_coherence(case):
    n = 700  # more than one row block and column chunk boundary
    rng = np.random.default_rng(5)
    if case == "equal_coherence":  # the bound prunes nothing: blocked full scan
        lat = lattice_from(1, n, coherence=np.full(n, 0.7))
    elif case == "ties":
        lat = lattice_from(2, n, coherence=rng.choice([0.25, 0.5, 1.0], n), phases=rng.choice([0.0, np.pi / 3, np.pi], n))
    elif case == "zeros":
        lat = lattice_from(3, n, coherence=np.zeros(n))
    else:
        lat = Lattice(n=n)
    for k in (1, 10, 333):
        check_pairs(lat, k, lat.top_interference(k), 1.0)
        check_pairs(lat, k, lat.bottom_interference(k), -1.0)


def test_top_interference_spans_several_blocks(monkeypatch):
    import core.engine.lattice as mod

    monkeypatch.setattr(mod, "_ROW_BLOCK", 7)
    monkeypatch.setattr(mod, "_COL_BLOCK", 11)
    for seed in range(5):
        lat = lattice_from(seed, 90)
        check_pairs(lat, 25, lat.top_interference(25), 1.0)
        check_pairs(lat, 25, lat.bottom_interference(25), -1.0)


def test_order_parameter():
    assert Lattice().order_parameter() == 0j
    lat = Lattice(phase=[0.0, np.pi / 2], coherence=[1.0, 0.5])
    assert lat.order_parameter() == pytest.approx(complex(0.5, 0.25))
    aligned = Lattice(phase=[1.0] * 4)
    assert abs(aligned.order_parameter()) == pytest.approx(1.0)
    s = aligned.summary()
    assert s["R"] == pytest.approx(1.0) and s["psi"] == pytest.approx(1.0)


def test_interference_is_independent_of_phase_wrapping():
    lat = lattice_from(9, 30)
    wrapped = Lattice(lat.energy, lat.wrapped_phase(), lat.coherence)
    np.testing.assert_allclose(lat.interference_matrix(), wrapped.interference_matrix(), atol=1e-12)
    assert lat.order_parameter() == pytest.approx(wrapped.order_parameter())
