"""Data loaders on real files (../shared/data), a generated CIFAR-10 fixture, and corrupt inputs."""

import contextlib
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from claimbench import data
from claimbench.errors import DataError


@pytest.fixture
def fake_data_unchecked(monkeypatch):
    """Generated stand-ins carry the real files' names but not their contents: no checksums are expected."""
    monkeypatch.setattr(data, "expected_checksums", lambda: {})


def write_idx(path, array: np.ndarray, gz=True):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:  # closed here: nothing relies on refcounting to flush
        f.write(blob)


@contextlib.contextmanager
def default_dtype(dtype):
    """torch's default dtype set to `dtype` inside the block, restored after."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def test_read_idx_roundtrip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    write_idx(tmp_path / "b", a, gz=False)
    assert np.array_equal(data.read_idx(tmp_path / "a.gz"), a)
    assert np.array_equal(data.read_idx(tmp_path / "b"), a)


def test_read_idx_rejects_truncated_and_wrong_magic(tmp_path):
    a = np.zeros((5, 4), np.uint8)
    write_idx(tmp_path / "t", a, gz=False)
    (tmp_path / "t").write_bytes((tmp_path / "t").read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.read_idx(tmp_path / "t")
    (tmp_path / "m").write_bytes(b"\x01\x02\x03\x04" + b"\0" * 8)
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        data.read_idx(tmp_path / "m")
    (tmp_path / "g.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="corrupt"):
        data.read_idx(tmp_path / "g.gz")


@pytest.mark.needs_data
def test_fashion_mnist_real_files():
    with default_dtype(torch.float32):
        train, test = data.load_fashion_mnist("train"), data.load_fashion_mnist("test")
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == torch.float32 and 0 <= float(train.x.min()) and float(train.x.max()) <= 1
    assert torch.bincount(train.y).tolist() == [6000] * 10
    assert torch.bincount(test.y).tolist() == [1000] * 10
    assert train.num_classes == 10


@pytest.mark.needs_data
def test_fashion_mnist_in_float64_when_that_is_the_default_dtype():
    with default_dtype(torch.float32):
        single = data.load_fashion_mnist("test")
    with default_dtype(torch.float64):
        double = data.load_fashion_mnist("test")
    assert single.x.dtype == torch.float32 and double.x.dtype == torch.float64
    assert torch.allclose(double.x, single.x.double(), rtol=0, atol=1e-7)


def make_fashion(folder, n_train=7, n_test=3):
    """A tiny Fashion-MNIST: the four IDX files (gz) in `folder`, all pixels 255."""
    folder.mkdir(parents=True, exist_ok=True)
    for (split, kind), stem in data.FASHION_FILES.items():
        n = n_train if split == "train" else n_test
        arr = np.full((n, 28, 28), 255, np.uint8) if kind == "images" else np.arange(n, dtype=np.uint8) % 10
        write_idx(folder / (stem + ".gz"), arr)
    return folder


@pytest.mark.usefixtures("fake_data_unchecked")
def test_explicit_root_is_searched_in_both_layouts(tmp_path, data_less_repo):
    make_fashion(tmp_path / "nested" / "fashion-mnist", n_train=7)
    make_fashion(tmp_path / "flat", n_train=5)
    assert len(data.load_fashion_mnist("train", root=tmp_path / "nested")) == 7
    assert len(data.load_fashion_mnist("train", root=tmp_path / "flat")) == 5
    assert float(data.load_fashion_mnist("train", root=tmp_path / "flat").x.max()) == 1.0


@pytest.mark.usefixtures("fake_data_unchecked")
def test_env_folder_is_searched_in_both_layouts(tmp_path, data_less_repo, monkeypatch):
    make_fashion(tmp_path / "nested" / "fashion-mnist", n_train=7)
    make_fashion(tmp_path / "flat", n_train=5)
    monkeypatch.setenv("CLAIMBENCH_DATA", str(tmp_path / "nested"))
    assert data.fashion_mnist_dir() == tmp_path / "nested" / "fashion-mnist"
    monkeypatch.setenv("CLAIMBENCH_DATA", str(tmp_path / "flat"))
    assert len(data.load_fashion_mnist("train")) == 5


@pytest.mark.usefixtures("fake_data_unchecked")
def test_root_wins_over_env_and_env_over_defaults(tmp_path, data_less_repo, monkeypatch):
    make_fashion(tmp_path / "shared" / "data" / "fashion-mnist", n_train=2)  # the default ../shared/data
    make_fashion(tmp_path / "env" / "fashion-mnist", n_train=4)
    make_fashion(tmp_path / "root" / "fashion-mnist", n_train=6)
    assert len(data.load_fashion_mnist("train")) == 2
    monkeypatch.setenv("CLAIMBENCH_DATA", str(tmp_path / "env"))
    assert len(data.load_fashion_mnist("train")) == 4
    assert len(data.load_fashion_mnist("train", root=tmp_path / "root")) == 6
    monkeypatch.setenv("CLAIMBENCH_DATA", "")  # set but empty: as if unset
    assert len(data.load_fashion_mnist("train")) == 2


def _explicit_error(tmp_path, monkeypatch, how, folder, locate=data.fashion_mnist_dir):
    """The DataError of `locate` with `folder` set as data.root (how='root') or CLAIMBENCH_DATA (how='env')."""
    if how == "env":
        monkeypatch.setenv("CLAIMBENCH_DATA", str(folder))
    with pytest.raises(DataError) as e:
        locate(folder if how == "root" else None)
    return str(e.value)


@pytest.mark.parametrize("how, setting", [("root", "data.root"), ("env", "CLAIMBENCH_DATA")])
@pytest.mark.parametrize("state", ["missing", "empty", "without the dataset"])
def test_explicit_folder_without_the_dataset_is_an_error_not_skipped(
    tmp_path, data_less_repo, monkeypatch, how, setting, state
):
    make_fashion(tmp_path / "shared" / "data" / "fashion-mnist")  # a default copy that must not be used
    folder = tmp_path / "mine"
    if state != "missing":
        folder.mkdir()
    if state == "without the dataset":
        (folder / "notes.txt").write_text("x")
    msg = _explicit_error(tmp_path, monkeypatch, how, folder)
    assert setting in msg and str(folder) in msg and "fashion-mnist/train-images-idx3-ubyte" in msg
    assert "unset it to search the default folders" in msg and msg.count("\n") == 0
    assert {"missing": "does not exist", "empty": "is an empty folder", "without the dataset": "has no"}[state] in msg


@pytest.mark.parametrize("locate, want", [(data.tinyshakespeare_dir, "tinyshakespeare/input.txt"),
                                          (data.cifar10_dir, "cifar10/cifar-10-batches-py/")])
def test_explicit_folder_errors_for_every_dataset(tmp_path, data_less_repo, monkeypatch, locate, want):
    (tmp_path / "shared" / "data" / "tinyshakespeare").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "tinyshakespeare" / "input.txt").write_text("a default copy, not to be used")
    make_cifar_fixture(tmp_path / "shared" / "data")
    (tmp_path / "empty").mkdir()
    for how in ("root", "env"):
        msg = _explicit_error(tmp_path, monkeypatch, how, tmp_path / "empty", locate)
        assert want in msg and str(tmp_path / "empty") in msg and "unset it" in msg


def test_default_search_error_lists_every_folder_and_how_to_get_the_data(tmp_path, data_less_repo):
    with pytest.raises(DataError) as e:
        data.load_fashion_mnist("train")
    msg = str(e.value)
    for folder in data.default_dirs("fashion-mnist"):
        assert str(folder) in msg
    assert "CLAIMBENCH_DATA" in msg and "apt-get install dataset-fashion-mnist" in msg and "fetch" in msg


def make_cifar_fixture(root, n_per_batch=6):
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                 "labels": list(rng.integers(0, 10, n_per_batch)), "batch_label": name}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return folder


@pytest.mark.usefixtures("fake_data_unchecked")
def test_cifar10_loader_on_generated_fixture(tmp_path):
    folder = make_cifar_fixture(tmp_path)
    train, test = data.load_images("cifar10", "train", tmp_path), data.load_images("cifar10", "test", tmp_path)
    assert train.x.shape == (30, 3, 32, 32) and test.x.shape == (6, 3, 32, 32)
    raw = pickle.load(open(folder / "test_batch", "rb"))
    assert torch.allclose(test.x[0, 0, 0, :3] * 255, torch.tensor(raw["data"][0, :3], dtype=test.x.dtype))
    assert test.y.tolist() == [int(v) for v in raw["labels"]]
    (folder / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DataError, match="data_batch_3"):
        data.load_images("cifar10", "train", tmp_path)


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="unknown; available"):
        data.load_images("imagenet", "train")


@pytest.mark.needs_data("tinyshakespeare")
def test_tinyshakespeare():
    corpus = data.load_tinyshakespeare()
    assert len(corpus.tokens) == 1115394 and len(corpus.vocab) == 65
    train, val = corpus.split(0.9)
    assert len(train) + len(val) == len(corpus.tokens)
    assert "".join(corpus.vocab[i] for i in corpus.tokens[:9].tolist()) == "First Cit"


def test_balanced_and_random_subsets_are_deterministic():
    y = torch.arange(100) % 10
    a, b = data.balanced_subset(y, 3, seed=1), data.balanced_subset(y, 3, seed=1)
    assert torch.equal(a, b) and torch.bincount(y[a]).tolist() == [3] * 10
    assert not torch.equal(a, data.balanced_subset(y, 3, seed=2))
    r = data.random_subset(100, 10, seed=0)
    assert len(set(r.tolist())) == 10
    with pytest.raises(DataError):
        data.balanced_subset(y, 11, seed=0)


def test_label_noise_flip_and_permute():
    y = torch.arange(1000) % 10
    noisy, mask = data.inject_label_noise(y, 0.1, 10, seed=0, mode="flip")
    assert int(mask.sum()) == 100 and bool((noisy[mask] != y[mask]).all()) and torch.equal(noisy[~mask], y[~mask])
    perm, pmask = data.inject_label_noise(y, 0.1, 10, seed=0, mode="permute")
    assert int(pmask.sum()) <= 100 and torch.equal(torch.bincount(perm), torch.bincount(y))
    with pytest.raises(ValueError, match="mode"):
        data.inject_label_noise(y, 0.1, 10, seed=0, mode="swap")


def test_standardize_per_image_matches_tf_definition():
    x = torch.rand(4, 1, 28, 28)
    s = data.standardize_per_image(x)
    assert torch.allclose(s.flatten(1).mean(1), torch.zeros(4), atol=1e-5)
    assert torch.allclose(s.flatten(1).std(1, unbiased=False), torch.ones(4), atol=1e-4)
    const = torch.full((1, 1, 28, 28), 0.5)  # zero std -> divided by 1/sqrt(784), stays finite
    assert torch.isfinite(data.standardize_per_image(const)).all()


def test_synthetic_sets():
    like = data.ImageData(torch.rand(50, 1, 4, 4), torch.zeros(50, dtype=torch.long), ["a"], "t")
    g = data.gaussian_images(10, (1, 4, 4), seed=0, like=like)
    assert g.shape == (10, 1, 4, 4) and torch.equal(g, data.gaussian_images(10, (1, 4, 4), seed=0, like=like))
    assert data.random_labels(20, 10, seed=0).max() < 10
    assert data.derive_seed("a", 1) == data.derive_seed("a", 1) != data.derive_seed("a", 2)


def test_float_helpers_follow_the_input_or_default_dtype():
    like = data.ImageData(torch.rand(50, 1, 4, 4, dtype=torch.float64), torch.zeros(50, dtype=torch.long), ["a"], "t")
    assert data.gaussian_images(3, (1, 4, 4), seed=0, like=like).dtype == torch.float64
    assert data.standardize_per_image(torch.rand(2, 1, 4, 4, dtype=torch.float64)).dtype == torch.float64
    with default_dtype(torch.float64):
        assert data.gaussian_images(3, (1, 4, 4), seed=0).dtype == torch.float64
        assert data.standardize_per_image(torch.full((2, 1, 4, 4), 7, dtype=torch.uint8)).dtype == torch.float64


@pytest.mark.usefixtures("fake_data_unchecked")
def test_cifar10_in_float64_when_that_is_the_default_dtype(tmp_path):
    make_cifar_fixture(tmp_path)
    with default_dtype(torch.float32):
        single = data.load_cifar10("test", tmp_path)
    with default_dtype(torch.float64):
        double = data.load_cifar10("test", tmp_path)
    assert double.x.dtype == torch.float64 and torch.allclose(double.x, single.x.double(), rtol=0, atol=1e-7)
