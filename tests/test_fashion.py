"""Fashion-MNIST as a data source: preprocessing (docs/MATH.md §5), the sources and the problem class."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from fashion_helpers import one_line, write_dataset
from gmstep import fashion
from gmstep.errors import ConfigError, DataError

# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def real_dir() -> Path:
    try:
        return fashion.find_data_dir(None)
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): {exc}")


@pytest.fixture(scope="module")
def real_data(real_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    return fashion.load_fashion_mnist(real_dir)


# ----------------------------------------------------------------------------- preprocessing


def reference_prepare(images, labels, classes, centering):
    """The docs/MATH.md §5 preprocessing written out directly (covariances with 1/N)."""
    u = [images[labels == c] for c in classes]
    mu = [x.mean(axis=0) for x in u]
    cov = [np.cov(x, rowvar=False, bias=True) for x in u]
    s = np.sqrt(np.trace(cov[0]) / np.trace(cov[1]))
    if centering == "class":
        v = [u[0] - mu[0], s * (u[1] - mu[1])]
    else:
        mid = (mu[0] + mu[1]) / 2
        v = [u[0] - mid, s * (u[1] - mid)]
    trs = np.trace((cov[0] + s**2 * cov[1]) / 2)
    return v, trs


def test_prepare_pair_by_hand() -> None:
    """Two 2-pixel classes worked out by hand (docs/MATH.md §5).

    Class 4: (0, 0), (2, 0): mu_1 = (1, 0), tr(S_1) = 1. Class 7: (4, 2), (4, 6): mu_2 = (4, 4),
    tr(S_2) = 4, so s_2 = sqrt(1 / 4) = 1/2; the common mean is mu = (2.5, 2).
    Common centring: x_1 = u_1 - mu, x_2 = s_2 (u_2 - mu) (the offset mu_2 - mu is scaled too);
    class centring: x_i = s_i (u_i - mu_i). trS = tr((S_1 + s_2^2 S_2) / 2) = 1 in both.
    """
    images = np.array([[0.0, 0.0], [4.0, 2.0], [2.0, 0.0], [4.0, 6.0]])
    labels = np.array([4, 7, 4, 7])
    common = fashion.prepare_pair(images, labels, classes=(4, 7), centering="common")
    np.testing.assert_allclose(common.images[0], [[-2.5, -2.0], [-0.5, -2.0]], atol=1e-15)
    np.testing.assert_allclose(common.images[1], [[0.75, 0.0], [0.75, 2.0]], atol=1e-15)
    assert common.trS == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(common.transform.offsets, [[-1.5, -2.0], [0.75, 1.0]])
    np.testing.assert_allclose(common.transform.unprepare(1, common.images[1]), images[[1, 3]])
    per_class = fashion.prepare_pair(images, labels, classes=(4, 7), centering="class")
    np.testing.assert_allclose(per_class.images[0], [[-1.0, 0.0], [1.0, 0.0]], atol=1e-15)
    np.testing.assert_allclose(per_class.images[1], [[0.0, -1.0], [0.0, 1.0]], atol=1e-15)
    assert per_class.trS == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("centering", ["class", "common"])
def test_prepare_pair_formulas(centering: str) -> None:
    rng = np.random.default_rng(3)
    labels = np.repeat([4, 7, 2], [30, 40, 5])
    images = rng.random((labels.size, 6)) * np.where(labels == 7, 3.0, 1.0)[:, None]
    images += (labels == 7)[:, None] * np.arange(6)
    pair = fashion.prepare_pair(images, labels, classes=(4, 7), centering=centering)
    v_ref, trs_ref = reference_prepare(images, labels, (4, 7), centering)
    for got, want in zip(pair.images, v_ref, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-12)
    assert pair.trS == pytest.approx(trs_ref, rel=1e-12)
    traces = [np.trace(pair.covariance(i)) for i in range(2)]
    assert traces[0] == pytest.approx(traces[1], rel=1e-12)
    assert pair.trS == pytest.approx(traces[0], rel=1e-12)
    means = [pair.class_mean(i) for i in range(2)]
    if centering == "class":
        assert np.abs(means).max() < 1e-12
    else:  # the offset is scaled with the rest of the class-2 image
        mu = [images[labels == c].mean(axis=0) for c in (4, 7)]
        np.testing.assert_allclose(means[0], (mu[0] - mu[1]) / 2, atol=1e-12)
        np.testing.assert_allclose(means[1], pair.transform.scales[1] * (mu[1] - mu[0]) / 2,
                                   atol=1e-12)
        assert np.abs(means[0]).max() > 0.1
    # the inverse map recovers the raw images
    np.testing.assert_allclose(pair.transform.unprepare(1, pair.images[1]), images[labels == 7])


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"theta": -1.0}, "theta"),
        ({"theta": float("nan")}, "theta"),
        ({"theta": "784"}, "theta"),
        ({"theta": 1.0, "classes": (3, 3)}, "classes"),
        ({"theta": 1.0, "classes": (0, 10)}, "classes"),
        ({"theta": 1.0, "classes": (1,)}, "classes"),
        ({"theta": 1.0, "classes": (0.5, 1.0)}, "classes"),  # whole floats pass, as for the parameter
        ({"theta": 1.0, "centering": "mean"}, "centering"),
        ({"theta": 1.0, "source": "vae"}, "source"),
        ({"theta": 1.0, "dtype": np.int64}, "dtype"),
        ({"theta": 1.0, "dtype": "float16"}, "dtype"),
        ({"theta": 1.0, "source": "cgan", "gan_stats_samples": 1}, "gan_stats_samples"),
    ],
)
def test_build_problem_bad_arguments(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        fashion.build_problem(**kwargs)
    assert exc.value.key == key
    assert "\n" not in str(exc.value)


@pytest.mark.subprocess
def test_missing_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMSTEP_FASHION_MNIST", str(tmp_path / "absent"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        fashion.build_problem(theta=1.0)


def test_cgan_without_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # ``import torch`` now fails
    with pytest.raises(ConfigError) as exc:
        fashion.build_problem(theta=1.0, source="cgan", gan_dir=tmp_path)
    assert "pip install 'gmstep[gan]'" in one_line(exc)


# ----------------------------------------------------------------------------- small problems


def test_sample_layout_and_figure(tmp_path: Path) -> None:
    write_dataset(tmp_path, per_class=(6, 2))
    problem = fashion.build_problem(theta=50.0, classes=(2, 5), data_dir=tmp_path)
    assert (problem.n, problem.tr, problem.scale) == (784, 834.0, 1.0)
    x, y = problem.sample(11, np.random.default_rng(0))
    assert x.shape == (11, 784) and x.dtype == np.float64
    np.testing.assert_array_equal(y, [-1.0] * 5 + [1.0] * 6)
    x2, _ = problem.sample(11, np.random.default_rng(0))
    np.testing.assert_array_equal(x, x2)  # a function of the rng
    with pytest.raises(ConfigError) as exc:
        problem.sample(17, np.random.default_rng(0))  # 9 > 8 images of class 5
    assert exc.value.key == "m" and "m = 17" in str(exc.value)
    p32 = fashion.build_problem(theta=50.0, classes=(2, 5), data_dir=tmp_path, dtype=np.float32)
    x, y = p32.sample(4, np.random.default_rng(0))
    assert x.dtype == np.float32 and y.dtype == np.float32
    out = fashion.save_inputs_figure(problem, tmp_path / "inputs.png", np.random.default_rng(0), 3)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- the real data


def test_real_data(real_data: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = real_data
    assert images.shape == (70_000, 784) and images.dtype == np.float64
    assert labels.shape == (70_000,)
    np.testing.assert_array_equal(np.bincount(labels), [7000] * 10)
    assert images.min() == 0.0 and images.max() == 1.0


@pytest.mark.parametrize("centering", ["class", "common"])
def test_real_preprocessing(real_dir: Path, real_data, centering: str) -> None:
    images, labels = real_data
    problem = fashion.build_problem(theta=784.0, classes=(0, 1), centering=centering,
                                    data_dir=real_dir)
    pair = problem.pair
    assert [v.shape for v in pair.images] == [(7000, 784), (7000, 784)]
    means = [v.mean(axis=0) for v in pair.images]
    if centering == "class":
        assert max(np.abs(m).max() for m in means) < 1e-10
    else:
        mu = [images[labels == c].mean(axis=0) for c in (0, 1)]
        np.testing.assert_allclose(means[0], (mu[0] - mu[1]) / 2, atol=1e-10)
        s2 = pair.transform.scales[1]
        np.testing.assert_allclose(means[1], s2 * (mu[1] - mu[0]) / 2, atol=1e-10)
    # equal total variance (trace of the covariance) and trS = tr((S_1 + S_2) / 2)
    traces = [np.mean(np.sum((v - m) ** 2, axis=1)) for v, m in zip(pair.images, means, strict=True)]
    assert traces[0] == pytest.approx(traces[1], rel=1e-10)
    assert problem.trS == pytest.approx((traces[0] + traces[1]) / 2, rel=1e-10)
    raw_t = [np.mean(np.sum((images[labels == c] - images[labels == c].mean(0)) ** 2, 1))
             for c in (0, 1)]
    assert problem.trS == pytest.approx(raw_t[0], rel=1e-10)
    np.testing.assert_allclose(pair.transform.scales, [1.0, np.sqrt(raw_t[0] / raw_t[1])])


@pytest.mark.parametrize("theta", [784.0, 100.0, 0.0])
def test_real_sample_spread(real_dir: Path, theta: float) -> None:
    """E||x||^2 = theta + 784 for class centring: the image part carries total variance theta."""
    problem = fashion.build_problem(theta=theta, classes=(0, 1), data_dir=real_dir)
    x, y = problem.sample(4000, np.random.default_rng(7))
    assert x.shape == (4000, 784)
    np.testing.assert_array_equal(y, np.repeat([-1.0, 1.0], 2000))
    assert np.mean(np.sum(x**2, axis=1)) == pytest.approx(theta + 784, rel=0.03)


def test_real_without_replacement(real_dir: Path) -> None:
    problem = fashion.build_problem(theta=784.0, classes=(5, 9), data_dir=real_dir)
    rng = np.random.default_rng(0)
    for i in range(2):
        drawn = problem.images(i, 7000, rng)  # the whole class: each image exactly once
        np.testing.assert_array_equal(
            np.sort(drawn.sum(axis=1)), np.sort(problem.pair.images[i].sum(axis=1))
        )
    problem.sample(14_000, rng)
    with pytest.raises(ConfigError) as exc:
        problem.sample(14_002, rng)
    assert exc.value.key == "m" and "m = 14002" in str(exc.value)


@pytest.mark.slow
def test_gaussian_source_matches_real(real_dir: Path) -> None:
    """Gaussian draws have the real prepared class means and covariances.

    For N i.i.d. Gaussian rows with covariance C, ``E||C^ - C||_F^2 = (tr(C)^2 + ||C||_F^2) / N``
    and ``E||mean^ - mu||^2 = tr(C) / N``. Both norms concentrate (sums over many coordinates),
    so we allow 1.5 times (covariance) and 3 times (mean) their expected size; a wrong mean or
    covariance (e.g. the other class's) is off by far more.
    """
    problem = fashion.build_problem(theta=784.0, classes=(0, 1), centering="common",
                                    source="gaussian", data_dir=real_dir)
    pair = problem.pair
    count = 20_000
    rng = np.random.default_rng(11)
    for i in range(2):
        v = problem.images(i, count, rng)
        mean, cov = pair.class_mean(i), pair.covariance(i)
        tr, fro = np.trace(cov), np.linalg.norm(cov)
        got_mean = v.mean(axis=0)
        assert np.linalg.norm(got_mean - mean) < 3 * np.sqrt(tr / count)
        centred = v - got_mean
        got_cov = centred.T @ centred / count
        rel = np.linalg.norm(got_cov - cov) / fro
        expected = np.sqrt((tr**2 + fro**2) / count) / fro
        assert rel < 1.5 * expected, (rel, expected)
        other = pair.covariance(1 - i)
        assert np.linalg.norm(other - cov) / fro > 10 * expected


# ----------------------------------------------------------------------------- disjoint data sets


def test_real_sets_are_disjoint(tmp_path: Path) -> None:
    """Gradient batch, training and test sets: one draw without replacement per class.

    The noise of set j is the first draw of ``rngs[j]``, so ``v = (x - z) / sqrt(theta / trS)``
    recovers the prepared images, which are matched to the rows of the class pools.
    """
    write_dataset(tmp_path, per_class=(6, 2))  # 8 images per class
    problem = fashion.build_problem(theta=50.0, classes=(2, 5), data_dir=tmp_path)
    sizes = (3, 5, 6)  # class 2 needs 1 + 2 + 3 = 6 images, class 5 needs 2 + 3 + 3 = 8
    sets = problem.sample_disjoint(sizes, [np.random.default_rng(j) for j in range(3)],
                                   np.random.default_rng(9))
    used: list[set[int]] = [set(), set()]
    for j, ((x, y), size) in enumerate(zip(sets, sizes, strict=True)):
        assert x.shape == (size, 784)
        np.testing.assert_array_equal(y, [-1.0] * (size // 2) + [1.0] * (size - size // 2))
        z = np.random.default_rng(j).standard_normal(x.shape)
        v = (x - z) / problem.input_scale
        for row, label in zip(v, y, strict=True):
            i = int(label > 0)
            dist = np.abs(problem.pair.images[i] - row).max(axis=1)
            match = int(np.argmin(dist))
            assert dist[match] < 1e-9
            assert match not in used[i]  # never in two sets, nor twice in one
            used[i].add(match)
    assert [len(u) for u in used] == [6, 8]
    again = problem.sample_disjoint(sizes, [np.random.default_rng(j) for j in range(3)],
                                    np.random.default_rng(9))
    for (a, _), (b, _) in zip(sets, again, strict=True):
        np.testing.assert_array_equal(a, b)  # a function of the generators
    with pytest.raises(ConfigError) as exc:  # class 5 would need 2 + 3 + 4 = 9 > 8
        problem.sample_disjoint((3, 5, 8), [np.random.default_rng(j) for j in range(3)],
                                np.random.default_rng(9))
    msg = one_line(exc)
    assert exc.value.key == "m" and "9 images of class 5" in msg and "only 8 exist" in msg


def test_experiment_sets_are_disjoint(tmp_path: Path) -> None:
    """The experiments draw their three Fashion-MNIST sets through the disjoint draw."""
    from gmstep import config
    from gmstep.engine import datasets

    write_dataset(tmp_path, per_class=(6, 2))
    base = {"dataset": "fashion-mnist", "task": "classification", "n": 784, "beta": 1.0,
            "alpha": 0.0, "classes": [2, 5], "data_dir": str(tmp_path), "m": 4}
    p = config.resolved(config.validate_params({**base, "m_test": 6}))  # 2 + 2 + 3 = 7 <= 8
    ds = datasets.draw_data(p, 0, (0, 0))
    assert [d[0].shape[0] for d in (ds.grad, ds.train, ds.test)] == [4, 4, 6]
    p = config.resolved(config.validate_params({**base, "m_test": 10}))  # 2 + 2 + 5 = 9 > 8
    with pytest.raises(ConfigError, match="9 images of class 2"):
        datasets.draw_data(p, 0, (0, 0))
