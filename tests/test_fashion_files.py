"""Reading the Fashion-MNIST files: the IDX reader, the data search and the cached arrays."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from fashion_helpers import one_line, write_dataset, write_idx
from gmstep import fashion_files
from gmstep.errors import DataError

# ----------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 1], dtype=np.uint8)
    ext = ".gz" if gz else ""
    write_idx(tmp_path / f"img{ext}", images, gz)
    write_idx(tmp_path / f"lbl{ext}", labels, gz)
    got = fashion_files.read_idx(tmp_path / f"img{ext}", kind="images")
    assert got.dtype == np.uint8 and got.shape == (5, 28, 28)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(fashion_files.read_idx(tmp_path / f"lbl{ext}", kind="labels"), labels)
    # ``name`` and ``name.gz`` stand for each other
    other = tmp_path / ("img" if gz else "img.gz")
    np.testing.assert_array_equal(fashion_files.read_idx(other), images)


def test_gzip_detected_by_content(tmp_path: Path) -> None:
    """A gzip file without the .gz suffix (and a plain file with it) are read correctly."""
    labels = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "a", labels, gz=True)
    write_idx(tmp_path / "b.gz", labels, gz=False)
    np.testing.assert_array_equal(fashion_files.read_idx(tmp_path / "a"), labels)
    np.testing.assert_array_equal(fashion_files.read_idx(tmp_path / "b.gz"), labels)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_bad_magic(tmp_path: Path, gz: bool) -> None:
    path = write_idx(tmp_path / "bad", np.zeros((2, 28, 28)), gz, magic=0x00000903)
    with pytest.raises(DataError) as exc:
        fashion_files.read_idx(path)
    msg = one_line(exc)
    assert "bad" in msg and "magic" in msg and "0x00000903" in msg
    # a valid label file is not an image file
    path = write_idx(tmp_path / "labels", np.zeros(3), gz)
    with pytest.raises(DataError, match="expected 0x00000803 for images"):
        fashion_files.read_idx(path, kind="images")


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_truncated(tmp_path: Path, gz: bool) -> None:
    data = np.ones((3, 28, 28), dtype=np.uint8)
    header = (0x803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (3, 28, 28))
    payload = header + data.tobytes()[:-100]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(DataError) as exc:
        fashion_files.read_idx(path)
    msg = one_line(exc)
    assert "short" in msg and "truncated" in msg and "2352" in msg and "2252" in msg


def test_read_idx_truncated_gzip_stream(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "cut.gz", np.ones((3, 28, 28)), gz=True)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError) as exc:
        fashion_files.read_idx(path)
    msg = one_line(exc)
    assert "cut.gz" in msg and "gzip" in msg


def test_read_idx_trailing_bytes(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "long", np.ones(4), gz=False)
    path.write_bytes(path.read_bytes() + b"xx")
    with pytest.raises(DataError, match="2 unexpected bytes"):
        fashion_files.read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such IDX file"):
        fashion_files.read_idx(tmp_path / "nothing")


def test_count_mismatch(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(7), gz=True)
    with pytest.raises(DataError) as exc:
        fashion_files.load_fashion_mnist(tmp_path)
    msg = one_line(exc)
    assert "t10k-images" in msg and "20 images" in msg and "7 labels" in msg


def test_label_out_of_range(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    labels = np.tile(np.arange(10), 6)
    labels[3] = 10
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, gz=True)
    with pytest.raises(DataError) as exc:
        fashion_files.load_fashion_mnist(tmp_path)
    msg = one_line(exc)
    assert "train-labels" in msg and "label 10 out of range 0..9" in msg


def test_wrong_image_size(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((20, 27, 28)), gz=True)
    with pytest.raises(DataError, match="27 x 28, expected 28 x 28"):
        fashion_files.load_fashion_mnist(tmp_path)


# ----------------------------------------------------------------------------- finding the data


@pytest.mark.subprocess
def test_missing_data_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError) as exc:
        fashion_files.find_data_dir(tmp_path)
    msg = one_line(exc)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "data_dir" in msg and "GMSTEP_FASHION_MNIST" in msg and str(tmp_path) in msg
    monkeypatch.setenv("GMSTEP_FASHION_MNIST", str(tmp_path / "absent"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        fashion_files.load_fashion_mnist()
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        fashion_files.load_fashion_split("t10k")


@pytest.mark.subprocess
def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir, arg_dir = tmp_path / "env", tmp_path / "arg"
    env_dir.mkdir()
    arg_dir.mkdir()
    write_dataset(env_dir, gz=False)
    write_dataset(arg_dir, gz=True)
    monkeypatch.setenv("GMSTEP_FASHION_MNIST", str(env_dir))
    assert fashion_files.find_data_dir(None) == env_dir.resolve()
    assert fashion_files.find_data_dir(str(arg_dir)) == arg_dir.resolve()
    monkeypatch.delenv("GMSTEP_FASHION_MNIST")
    if not fashion_files.DEFAULT_DATA_DIR.is_dir():
        with pytest.raises(DataError, match=str(fashion_files.DEFAULT_DATA_DIR)):
            fashion_files.find_data_dir(None)


def test_load_small_dataset(tmp_path: Path) -> None:
    raw, labels = write_dataset(tmp_path, per_class=(6, 2))
    images, got_labels = fashion_files.load_fashion_mnist(tmp_path)
    assert images.shape == (80, 784) and images.dtype == np.float64
    np.testing.assert_allclose(images, raw / 255.0)
    np.testing.assert_array_equal(got_labels, labels)
    assert fashion_files.load_fashion_mnist(str(tmp_path))[0] is images  # memoised per directory


def _imported_modules(module) -> set[str]:
    """The gmstep modules a source file imports (at any level, lazily or not)."""
    import ast

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module)
            else:
                names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gmstep"):
            names.add((node.module or "").removeprefix("gmstep."))
    return names


def test_leaf_module() -> None:
    """gan reads the files through this leaf module and never imports fashion."""
    pytest.importorskip("torch")
    from gmstep import fashion, gan

    assert "fashion_files" in _imported_modules(gan)
    assert "fashion" not in _imported_modules(gan)
    assert "fashion_files" in _imported_modules(fashion)
    assert _imported_modules(fashion_files) <= {"errors"}
