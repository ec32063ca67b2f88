"""The conditional GAN (docs/MATH.md §5): architecture, short CPU training, resuming, sampling, CLI."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gmstep import cli_gan, fashion, gan, theory  # noqa: E402
from gmstep.errors import ConfigError, DataError  # noqa: E402
from helpers import write_idx  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


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


@pytest.mark.slow
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
    # common centring: the class-2 offset is scaled with the image (docs/MATH.md §5)
    half = (t.means[0] - t.means[1]) / 2
    np.testing.assert_allclose(t.offsets, [half, -t.scales[1] * half], atol=1e-12)
    with pytest.raises(ConfigError, match="class 5 was not trained"):
        fashion.build_problem(theta=1.0, classes=(0, 5), source="cgan", gan_dir=trained)


@pytest.mark.slow
def test_theory_of_cgan_source_uses_generated_class_statistics(trained: Path) -> None:
    """The cgan source's Gaussian equivalent (docs/THEORY.md): class ``i`` has the mean ``v_i`` and
    covariance ``C_i`` of CGAN_SAMPLES generated images (fixed seed), so the pre-activations have
    covariance ``F F^T + s^2 F C_i F^T`` and mean ``s F v_i``; recomputed here with ``np.cov``
    (the theory keeps an eigen-root of ``C_i``), labels -1 and +1."""
    problem = fashion.build_problem(theta=784.0, classes=(0, 1), source="cgan", gan_dir=trained,
                                    gan_stats_samples=300)
    f = np.random.default_rng(4).standard_normal((7, 784)) / 28.0
    s = problem.input_scale
    for i, comp in enumerate(theory.fashion_components(problem, f)):
        rng = np.random.default_rng([problem.classes[i], theory.CGAN_SAMPLES, 7310])
        v = problem.images(i, theory.CGAN_SAMPLES, rng)
        np.testing.assert_allclose(comp.cov, f @ f.T + s * s * f @ np.cov(v.T, bias=True) @ f.T, rtol=1e-9)
        np.testing.assert_allclose(comp.mean, s * f @ v.mean(axis=0), rtol=1e-9, atol=1e-12)
        assert comp.target.label == (-1.0, 1.0)[i]
    res = theory.predict(problem, f, "tanh", 40, 1e-3, 200)  # the whole model runs on it
    assert res.status == "ok" and 0 < res.train_error < res.test_error


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


@pytest.mark.subprocess
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
    cli_gan.register(parser.add_subparsers(dest="command"))
    cache = tmp_path / "cache"
    args = parser.parse_args(["gan", "train", "--epochs", "1", "--classes", "2,3",
                              "--cache", str(cache), "--data-dir", str(data_dir),
                              "--max-batches", "1", "--seed", "4"])
    assert args.func(args) == 0
    assert ckpt(cache)["config"]["classes"] == [2, 3]
    err = capsys.readouterr().err
    assert "cgan: epoch 1/1 took" in err and "per epoch" in err and "left" in err
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


# ----------------------------------------------------------------------------- progress, device


def test_epoch_timer_and_device() -> None:
    ticks = iter([0.0, 10.0, 10.0, 40.0])
    timer = gan.EpochTimer(start=2, epochs=6, clock=lambda: next(ticks))
    timer.begin()
    line = timer.end("cpu")  # epoch 3 of 6 took 10 s: 3 left at 10 s
    assert "epoch 3/6 took 10.0 s on cpu" in line and "about 30 s left" in line
    timer.begin()
    line = timer.end("cpu")  # epoch 4 took 30 s, mean 20 s: 2 left -> 40 s
    assert "epoch 4/6 took 30.0 s" in line and "mean 20.0 s" in line and "about 40 s left" in line
    assert gan.duration_text(600) == "10.0 min" and gan.duration_text(3 * 3600) == "3.0 h"
    assert gan.check_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_no_generator_message_gives_times(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        gan.load_generator(tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and "gmstep gan train" in msg and "gmstep gan import" in msg
    assert f"{gan.GPU_EPOCH_SECONDS} s per epoch on one GPU" in msg
    assert f"{gan.CPU_EPOCH_MINUTES:g} min per epoch on 2 CPU cores" in msg


# ----------------------------------------------------------------------------- class statistics


def test_statistics_cached_by_checkpoint_content(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "c"
    shutil.copytree(trained, cache)
    calls = []
    real_generate = gan.generate

    def counting(bundle, cls, count, rng):
        calls.append((cls, count))
        return real_generate(bundle, cls, count, rng)

    monkeypatch.setattr(gan, "generate", counting)

    def build():
        return fashion.build_problem(theta=784.0, classes=(0, 1), source="cgan", gan_dir=cache,
                                     gan_stats_samples=200)

    first = build().transform
    assert sum(c for _, c in calls) == 400  # 200 generated images per class
    files = sorted((cache / "cgan").glob("stats-*-n200.npz"))
    digest = gan.checkpoint_hash(gan.checkpoint_path(cache))
    assert len(files) == 2 and all(digest[:32] in f.name for f in files)
    # the mean and trace are those of the 200 images the fixed seed generates
    bundle = gan.load_generator(cache)
    u = real_generate(bundle, 0, 200, np.random.default_rng([0, 200, 20250]))
    np.testing.assert_allclose(first.means[0], u.mean(axis=0), atol=1e-12)
    assert first.traces[0] == pytest.approx(np.mean(np.sum((u - u.mean(0)) ** 2, axis=1)), rel=1e-9)

    calls.clear()
    second = build().transform  # a second run reads the cache
    assert calls == []
    np.testing.assert_array_equal(second.means, first.means)

    # another checkpoint content (other weights) has another hash: new statistics
    path = gan.checkpoint_path(cache)
    state = torch.load(path, weights_only=True)
    state["generator"]["0.weight"] = state["generator"]["0.weight"] * 1.5
    torch.save(state, path)
    third = build().transform
    assert sum(c for _, c in calls) == 400
    assert len(list((cache / "cgan").glob("stats-*-n200.npz"))) == 4
    assert np.abs(third.means - first.means).max() > 1e-6


@pytest.mark.subprocess
def test_source_label(trained: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GMSTEP_CACHE", str(trained))
    label = fashion.source_label({"source": "cgan", "gan_stats_samples": 1000})
    digest = gan.checkpoint_hash(gan.checkpoint_path(trained))
    assert label.startswith("source: cgan ") and f"sha256 {digest[:12]}" in label
    assert "trained 1 epoch of at most 1 batch," in label and "1,000 samples" in label
    monkeypatch.setenv("GMSTEP_CACHE", str(tmp_path / "empty"))
    assert "no generator" in fashion.source_label({"source": "cgan"})


# ----------------------------------------------------------------------------- the authors' weights


def authors_generator():
    """The authors' generator layout: ``fc`` and ``deconv`` sequentials, noise then one-hot."""
    nn = torch.nn

    class Authors(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Sequential(
                nn.Linear(72, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
                nn.Linear(1024, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
            )
            self.deconv = nn.Sequential(
                nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(),
            )

        def forward(self, noise, onehot):
            x = self.fc(torch.cat([noise, onehot], 1)).view(-1, 128, 7, 7)
            return self.deconv(x)

    model = Authors()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(1234)
    return model.eval()


def test_import_authors_generator(tmp_path: Path) -> None:
    model = authors_generator()
    src = tmp_path / "G.pth"
    torch.save(model.state_dict(), src)
    cache = tmp_path / "cache"
    out = gan.import_authors(src, cache_dir=cache)
    assert out == gan.checkpoint_path(cache)
    bundle = gan.load_generator(cache)
    assert bundle.classes == tuple(range(10)) and "imported from" in bundle.origin
    for cls in (0, 7):
        got = gan.generate(bundle, cls, 6, np.random.default_rng(cls))
        z = torch.from_numpy(np.random.default_rng(cls).random((6, 62)).astype(np.float32))
        onehot = torch.zeros(6, 10)
        onehot[:, cls] = 1.0
        with torch.no_grad():
            want = (model(z, onehot).reshape(6, -1).double().numpy() + 1.0) / 2.0
        np.testing.assert_allclose(got, np.clip(want, 0.0, 1.0), atol=1e-6)
    with pytest.raises(DataError, match="already exists"):  # never overwritten
        gan.import_authors(src, cache_dir=cache)
    with pytest.raises(ConfigError) as exc:  # imported weights are not trained further
        gan.train(epochs=1, cache_dir=cache, data_dir=tmp_path)
    assert exc.value.key == "cache"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda s: s.update({"fc.0.weight": torch.zeros(1024, 73)}), "fc.0.weight has shape"),
        (lambda s: s.update({"deconv.3.weight": torch.zeros(64, 3, 4, 4)}), "deconv.3.weight"),
        (lambda s: s.pop("fc.4.running_var"), "missing fc.4.running_var"),
        (lambda s: s.update({"fc.6.weight": torch.zeros(1)}), "unexpected keys fc.6.weight"),
        (lambda s: s.update({"fc.1.bias": torch.full((1024,), float("nan"))}), "non-finite"),
        (lambda s: s.update({"fc.1.bias": torch.zeros(1024, dtype=torch.long)}), "floating"),
    ],
)
def test_import_checks_every_tensor(tmp_path: Path, change, words: str) -> None:
    state = dict(authors_generator().state_dict())
    change(state)
    src = tmp_path / "bad.pth"
    torch.save(state, src)
    with pytest.raises(DataError) as exc:
        gan.import_authors(src, cache_dir=tmp_path / "cache")
    assert words in str(exc.value) and "\n" not in str(exc.value)
    assert not gan.checkpoint_path(tmp_path / "cache").exists()


def _touch(path: str) -> None:
    """The payload of the hostile pickles below: proof that code ran."""
    Path(path).write_text("code ran")


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch, (self.marker,))


def test_import_never_runs_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pickle

    from gmstep import cli

    marker = tmp_path / "marker"
    zipped = tmp_path / "hostile.pt"
    torch.save({"fc.0.weight": _Hostile(marker)}, zipped)
    raw = tmp_path / "hostile.pkl"
    raw.write_bytes(pickle.dumps(_Hostile(marker), protocol=2))
    for src in (zipped, raw):
        with pytest.raises(DataError) as exc:
            gan.import_authors(src, cache_dir=tmp_path / "cache")
        assert "refused" in str(exc.value) and "\n" not in str(exc.value)
        assert not marker.exists()
        assert cli.main(["gan", "import", str(src), "--cache", str(tmp_path / "cache")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "refused" in err
        assert not marker.exists()
    assert not gan.checkpoint_path(tmp_path / "cache").exists()
    # the payload is real: an unrestricted unpickler runs it
    pickle.loads(raw.read_bytes())
    assert marker.read_text() == "code ran"


def test_import_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gmstep import cli

    src = tmp_path / "G.pth"
    torch.save(authors_generator().state_dict(), src)
    assert cli.main(["gan", "import", str(src), "--cache", str(tmp_path / "c")]) == 0
    assert "imported" in capsys.readouterr().out
    assert cli.main(["gan", "import", str(tmp_path / "absent.pth")]) == 2
    assert "no such file" in capsys.readouterr().err
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    assert cli.main(["gan", "import", str(tmp_path / "list.pth"), "--cache", str(tmp_path / "d")]) == 2
    assert "not a state dict" in capsys.readouterr().err
