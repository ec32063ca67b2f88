"""The conditional GAN (SPEC 5): architecture, short CPU training, resuming, sampling, CLI."""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gmstep import fashion, gan  # noqa: E402
from gmstep.errors import ConfigError, DataError  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def write_idx(path: Path, array: np.ndarray) -> None:
    array = np.asarray(array, dtype=np.uint8)
    header = (0x800 | array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic Fashion-MNIST: 100 training images per class (class c is brighter in
    row block c), 2 test images per class."""
    directory = tmp_path_factory.mktemp("fmnist")
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 100), ("t10k", 2)):
        labels = np.tile(np.arange(10), per_class)
        images = rng.integers(0, 80, size=(labels.size, 28, 28))
        for c in range(10):
            images[labels == c, 2 * c : 2 * c + 8, :] += 150
        write_idx(directory / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte.gz", labels)
    return directory


def quick_train(cache: Path, data_dir: Path, epochs: int = 1, **kw) -> Path:
    kw.setdefault("classes", (0, 1))
    return gan.train(epochs=epochs, cache_dir=cache, progress=False, max_batches=1,
                     data_dir=data_dir, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A cache directory with a GAN trained for one epoch of one batch on classes 0 and 1."""
    cache = tmp_path_factory.mktemp("cache")
    quick_train(cache, data_dir)
    return cache


def ckpt(cache: Path) -> dict:
    return torch.load(gan.checkpoint_path(cache), weights_only=True)


# ----------------------------------------------------------------------------- architecture


def test_architecture_matches_spec() -> None:
    nn = torch.nn
    g = gan.build_generator()
    kinds = [type(m) for m in g]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU,
                     nn.Unflatten, nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU,
                     nn.ConvTranspose2d, nn.Tanh]
    assert (g[0].in_features, g[0].out_features) == (62 + 10, 1024)
    assert (g[3].in_features, g[3].out_features) == (1024, 128 * 7 * 7)
    for conv, (cin, cout) in ((g[7], (128, 64)), (g[10], (64, 1))):
        assert (conv.in_channels, conv.out_channels) == (cin, cout)
        assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (2, 2), (1, 1))
    d = gan.build_discriminator()
    kinds = [type(m) for m in d]
    assert kinds == [nn.Conv2d, nn.LeakyReLU, nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU,
                     nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.LeakyReLU, nn.Linear, nn.Sigmoid]
    for conv, (cin, cout) in ((d[0], (11, 64)), (d[2], (64, 128))):
        assert (conv.in_channels, conv.out_channels) == (cin, cout)
        assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (2, 2), (1, 1))
    assert (d[6].in_features, d[6].out_features, d[9].out_features) == (128 * 7 * 7, 1024, 1)
    assert all(m.negative_slope == 0.2 for m in d if isinstance(m, nn.LeakyReLU))
    # parameter counts written out layer by layer
    n_g = (72 * 1024 + 1024) + 2 * 1024 + (1024 * 6272 + 6272) + 2 * 6272 \
        + (128 * 64 * 16 + 64) + 2 * 64 + (64 * 16 + 1)
    n_d = (11 * 64 * 16 + 64) + (64 * 128 * 16 + 128) + 2 * 128 + (6272 * 1024 + 1024) \
        + 2 * 1024 + (1024 + 1)
    assert sum(p.numel() for p in g.parameters()) == n_g
    assert sum(p.numel() for p in d.parameters()) == n_d
    # shapes through the networks, and the initialisation
    gen = torch.Generator().manual_seed(0)
    gan.init_weights(g, gen)
    gan.init_weights(d, gen)
    labels = torch.tensor([0, 3, 9])
    with torch.no_grad():
        img = g(gan.generator_input(torch.rand(3, 62), labels))
        assert img.shape == (3, 1, 28, 28) and img.abs().max() <= 1
        out = d(gan.discriminator_input(img, labels))
    assert out.shape == (3, 1) and bool(((out > 0) & (out < 1)).all())
    with torch.no_grad():
        assert float(g[3].weight.std()) == pytest.approx(0.02, rel=0.05)
        assert float(g[3].bias.abs().max()) == 0.0
        assert float(g[4].weight.mean()) == pytest.approx(1.0, abs=0.01)


# ----------------------------------------------------------------------------- training


def test_train_generate_and_resume(trained: Path, tmp_path: Path, data_dir: Path) -> None:
    cache = tmp_path / "a"
    shutil.copytree(trained, cache)  # the fixture's 1-epoch training
    mtime0 = gan.checkpoint_path(cache).stat().st_mtime_ns
    assert quick_train(cache, data_dir) == cache / "cgan" / "cgan.pt"  # done: no-op
    first = ckpt(cache)
    assert first["epoch"] == 1 and len(first["history"]) == 1
    assert gan.checkpoint_path(cache).stat().st_mtime_ns == mtime0
    assert first["config"]["classes"] == [0, 1]
    bundle = gan.load_generator(cache)
    assert bundle.classes == (0, 1) and bundle.epoch == 1
    x = gan.generate(bundle, 1, 5, np.random.default_rng(3))
    assert x.shape == (5, 784) and x.dtype == np.float64
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x, gan.generate(bundle, 1, 5, np.random.default_rng(3)))

    quick_train(cache, data_dir, epochs=2)  # continues: epoch 1 -> 2, no restart
    second = ckpt(cache)
    assert second["epoch"] == 2 and len(second["history"]) == 2
    assert second["history"][0] == first["history"][0]
    assert not torch.equal(second["generator"]["0.weight"], first["generator"]["0.weight"])
    mtime = gan.checkpoint_path(cache).stat().st_mtime_ns
    quick_train(cache, data_dir, epochs=2)  # already done: nothing changes
    assert gan.checkpoint_path(cache).stat().st_mtime_ns == mtime

    # 1 + 1 epochs equal 2 epochs in one go: models, optimisers and RNG states were restored
    straight = tmp_path / "b"
    quick_train(straight, data_dir, epochs=2)
    third = ckpt(straight)
    for key, value in second["generator"].items():
        assert torch.allclose(value.float(), third["generator"][key].float(), atol=1e-6), key
    for h3, h2 in zip(third["history"], second["history"], strict=True):
        assert h3 == pytest.approx(h2)

    with pytest.raises(ConfigError) as exc:  # another configuration in the same cache
        quick_train(cache, data_dir, epochs=3, seed=1)
    assert exc.value.key == "cache"


def test_class_conditioning(trained: Path) -> None:
    bundle = gan.load_generator(trained)
    a = gan.generate(bundle, 0, 16, np.random.default_rng(5))
    b = gan.generate(bundle, 1, 16, np.random.default_rng(5))  # same noise, other class
    assert np.abs(a - b).max() > 1e-4
    with pytest.raises(ConfigError) as exc:
        gan.generate(bundle, 5, 4, np.random.default_rng(0))
    assert exc.value.key == "classes" and "class 5 was not trained" in str(exc.value)


def test_sample_grid(trained: Path, tmp_path: Path) -> None:
    out = gan.sample_grid(tmp_path / "grid.png", per_class=3, cache_dir=trained)
    assert out.read_bytes()[:8] == PNG
    with pytest.raises(ConfigError, match="not trained"):
        gan.sample_grid(tmp_path / "bad.png", classes=(0, 7), cache_dir=trained)


def test_cgan_problem(trained: Path) -> None:
    problem = fashion.build_problem(theta=784.0, classes=(1, 0), centering="common",
                                    source="cgan", gan_dir=trained, gan_stats_samples=300)
    assert problem.classes == (1, 0) and problem.tr == 784 + 784.0
    x, y = problem.sample(9, np.random.default_rng(0))
    assert x.shape == (9, 784)
    np.testing.assert_array_equal(y, [-1.0] * 4 + [1.0] * 5)
    t = problem.transform
    assert t.trS == pytest.approx(t.traces[0])
    # common centring: the class-2 offset is scaled with the image (SPEC 5)
    half = (t.means[0] - t.means[1]) / 2
    np.testing.assert_allclose(t.offsets, [half, -t.scales[1] * half], atol=1e-12)
    with pytest.raises(ConfigError, match="class 5 was not trained"):
        fashion.build_problem(theta=1.0, classes=(0, 5), source="cgan", gan_dir=trained)


def test_missing_weights(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        gan.load_generator(tmp_path)
    assert "gmstep gan train" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DataError, match="gmstep gan train"):
        fashion.build_problem(theta=1.0, source="cgan", gan_dir=tmp_path)


def test_bad_arguments(tmp_path: Path, data_dir: Path) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError) as exc:
            gan.train(epochs=1, device="cuda", cache_dir=tmp_path, data_dir=data_dir)
        assert exc.value.key == "device"
    for kwargs, key in (({"epochs": 0}, "epochs"), ({"classes": (0, 10)}, "classes"),
                        ({"device": "tpu"}, "device"), ({"max_batches": 0}, "max_batches")):
        with pytest.raises(ConfigError) as exc:
            gan.train(**{"cache_dir": tmp_path, "data_dir": data_dir, **kwargs})
        assert exc.value.key == key
    with pytest.raises(ConfigError) as exc:
        gan.parse_classes("0,x")
    assert exc.value.key == "classes"
    assert gan.parse_classes("3, 1") == (1, 3)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GMSTEP_CACHE", str(tmp_path / "c"))
    assert gan.checkpoint_path() == tmp_path / "c" / "cgan" / "cgan.pt"
    monkeypatch.delenv("GMSTEP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert gan.default_cache_dir() == tmp_path / "x" / "gmstep"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert gan.default_cache_dir() == Path.home() / ".cache" / "gmstep"


def test_cli(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="gmstep")
    gan.register_cli(parser.add_subparsers(dest="command"))
    cache = tmp_path / "cache"
    args = parser.parse_args(["gan", "train", "--epochs", "1", "--classes", "2,3",
                              "--cache", str(cache), "--data-dir", str(data_dir),
                              "--max-batches", "1", "--seed", "4"])
    assert args.func(args) == 0
    assert ckpt(cache)["config"]["classes"] == [2, 3]
    out = tmp_path / "s.png"
    args = parser.parse_args(["gan", "sample", "--out", str(out), "--cache", str(cache),
                              "--per-class", "2"])
    assert args.func(args) == 0
    assert out.read_bytes()[:8] == PNG
    args = parser.parse_args(["gan", "sample", "--classes", "2,x", "--cache", str(cache)])
    with pytest.raises(ConfigError):
        args.func(args)
    assert "gan" in parser.format_help()
    capsys.readouterr()
