"""Datasets as in-memory tensors: Fashion-MNIST, CIFAR-10, Tiny Shakespeare, synthetic sets; helpers.

Images are returned as ``ImageData`` with ``x`` in [0, 1] of dtype ``torch.get_default_dtype()`` (float32
unless a caller set float64), shape (N, C, H, W), and ``y`` int64 (N,). Everything is small enough to keep
resident (on the GPU when one is used): no DataLoader.

Where a dataset folder is searched: an explicit ``root`` (params ``data.root``) is the only place searched;
else env ``CLAIMBENCH_DATA`` (non-empty) is the only place searched; else the defaults, in order:
``../shared/data/<name>`` beside the repository, ``/usr/share/datasets/<name>`` (Debian's
``dataset-fashion-mnist``), the download cache ``data-cache/<name>`` (filled by ``python -m claimbench.data
fetch`` when online). An explicit folder may hold ``<name>/<files>`` or the files themselves; one without
them is an error, never skipped. Nothing is downloaded at training time or in tests.

Every file a loader reads is first checked against data_checksums.json (sha256; CIFAR-10: torchvision's md5),
hashed once per process; a mismatch is a one-line DataError. `files_read()` lists what was read (provenance).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import pickle
import shutil
import struct
import sys
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from claimbench.errors import DataError

if TYPE_CHECKING:  # annotations only
    from claimbench.contract import Context

FASHION_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DOWNLOAD_CACHE = "data-cache"
SYSTEM_DATASETS = Path("/usr/share/datasets")  # Debian's dataset-* packages


@dataclass
class ImageData:
    """x: default dtype (float32 unless set to float64), (N, C, H, W) in [0, 1]; y: int64 (N,); classes: names."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, index: torch.Tensor) -> ImageData:
        return ImageData(self.x[index], self.y[index], self.classes, self.name)

    def to(self, device: torch.device | str) -> ImageData:
        return ImageData(self.x.to(device), self.y.to(device), self.classes, self.name)


def repo_root() -> Path:
    """The repository root: the nearest folder upward from the cwd holding dvc.yaml, else the package's."""
    for d in [Path.cwd(), *Path.cwd().parents]:
        if (d / "dvc.yaml").exists():
            return d
    return Path(__file__).resolve().parents[2]


SETTINGS = {"data.root": "params.yaml data.root", "CLAIMBENCH_DATA": "env CLAIMBENCH_DATA"}


def explicit_dir(root: str | Path | None = None) -> tuple[str, Path] | None:
    """The one folder set explicitly, as (setting, folder): `root` (data.root), else env CLAIMBENCH_DATA; else None."""
    if root:
        return "data.root", Path(root)
    env = os.environ.get("CLAIMBENCH_DATA")
    if env:
        return "CLAIMBENCH_DATA", Path(env)
    return None


def default_dirs(name: str) -> list[Path]:
    """The default folders searched for dataset `name` when no folder is set explicitly, in order."""
    base = repo_root()
    return [base.parent / "shared" / "data" / name, SYSTEM_DATASETS / name, base / DOWNLOAD_CACHE / name]


def candidate_dirs(name: str, root: str | Path | None = None) -> list[Path]:
    """Folders searched for dataset `name` (e.g. 'fashion-mnist'): an explicit folder's two layouts, else defaults."""
    explicit = explicit_dir(root)
    if explicit:
        folder = explicit[1]
        return [folder / name, folder]
    return default_dirs(name)


def _folder_problem(folder: Path, name: str, want: str) -> str:
    """Why an explicit `folder` holds no dataset `name`: missing, unreadable, empty, or without the files."""
    try:
        empty = not any(folder.iterdir())
    except OSError as e:
        return "does not exist" if not folder.exists() else f"cannot be read ({e.strerror or e})"
    return "is an empty folder" if empty else f"has no {want}, neither in {name}/ nor at its top level"


def _explicit_missing(name: str, setting: str, folder: Path, want: str) -> DataError:
    """Short error for an explicit folder lacking dataset `name`: the setting, the folder, what was wanted, the fix."""
    return DataError(
        f"dataset {name!r} not found: {SETTINGS[setting]}={os.path.abspath(folder)} "
        f"{_folder_problem(folder, name, want)}. Fix: point {setting} at a folder holding {name}/{want}, "
        f"or unset it to search the default folders."
    )


def how_to_get(name: str) -> str:
    """One line: the ways to make dataset `name` available."""
    ways = [f"copy it to {repo_root().parent / 'shared' / 'data' / name}/"]
    if name == "fashion-mnist":
        ways.append("`apt-get install dataset-fashion-mnist`")
    ways.append(f"set CLAIMBENCH_DATA=<folder holding {name}/>")
    ways.append("run `python -m claimbench.data fetch" + (" --cifar10" if name == "cifar10" else "") + "` online")
    return "Get it: " + ", or ".join(ways) + "."


def _missing(name: str, root: str | Path | None, tried: list[Path], want: str) -> DataError:
    """The error for dataset `name` not found: short for an explicit folder, else every folder searched."""
    explicit = explicit_dir(root)
    if explicit:
        return _explicit_missing(name, *explicit, want)
    lines = "\n  ".join(str(p) for p in tried)
    return DataError(f"dataset {name!r} not found: looked for {want} in\n  {lines}\n{how_to_get(name)}")


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally .gz): uint8 array of the shape its header states."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e}); the file is corrupt — delete it and fetch again.") from None
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file (only {len(raw)} bytes).")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}).")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} but holds {data.size} bytes; file is truncated or corrupt.")
    return data.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / (stem + ".gz"), folder / stem, folder / "FashionMNIST" / "raw" / stem):
        if candidate.exists():
            return candidate
    return None


def fashion_mnist_dir(root: str | Path | None = None) -> Path:
    """First folder holding all four Fashion-MNIST IDX files (gz or raw). When none does but one holds some,
    the error names exactly the files that one lacks."""
    tried = candidate_dirs("fashion-mnist", root)
    partial = None
    for folder in tried:
        lacking = [stem for stem in FASHION_FILES.values() if not _find_idx(folder, stem)]
        if not lacking:
            return folder
        if partial is None and len(lacking) < len(FASHION_FILES):
            partial = folder, lacking
    if partial:
        raise _incomplete_fashion(*partial)
    raise _missing("fashion-mnist", root, tried, "train-images-idx3-ubyte[.gz] and the other IDX files")


def _incomplete_fashion(folder: Path, lacking: list[str]) -> DataError:
    return DataError(
        f"dataset 'fashion-mnist' incomplete: {folder} lacks {' and '.join(f + '[.gz]' for f in lacking)} "
        f"(it holds the other IDX files). Fix: copy the missing file there, or delete the folder and run "
        f"`python -m claimbench.data fetch`."
    )


def check_labels(path: Path, labels: np.ndarray, num_classes: int, dataset: str) -> None:
    """DataError (one line) unless every label in `labels` (read from `path`) is a class index 0..num_classes-1."""
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise DataError(
            f"{path}: label {int(bad[0])} out of range: {dataset} labels are 0..{num_classes - 1} "
            f"({bad.size} of {labels.size} outside); the file is corrupt or not {dataset}. "
            f"Fix: replace it (`python -m claimbench.data fetch`)."
        )


def _fashion_labels(path: Path) -> np.ndarray:
    labels = read_idx(path)
    if labels.ndim == 1:
        check_labels(path, labels, len(FASHION_CLASSES), "fashion-mnist")
    return labels


def load_fashion_mnist(split: str = "train", root: str | Path | None = None) -> ImageData:
    """Fashion-MNIST `split` ('train' 60k | 'test' 10k): x (N, 1, 28, 28) in [0, 1]."""
    if split not in ("train", "test"):
        raise DataError(f"fashion-mnist split {split!r} unknown; use 'train' or 'test'.")
    folder = fashion_mnist_dir(root)
    image_path = _find_idx(folder, FASHION_FILES[(split, "images")])
    label_path = _find_idx(folder, FASHION_FILES[(split, "labels")])
    verify_file("fashion-mnist", image_path)
    verify_file("fashion-mnist", label_path)
    images, labels = read_idx(image_path), _fashion_labels(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: Fashion-MNIST {split} images {images.shape} and labels {labels.shape} disagree.")
    x = torch.from_numpy(images.copy()).unsqueeze(1).to(torch.get_default_dtype()).div_(255.0)
    return ImageData(x, torch.from_numpy(labels.astype(np.int64)), FASHION_CLASSES, "fashion-mnist")


def cifar10_dir(root: str | Path | None = None) -> Path:
    tried = [d / "cifar-10-batches-py" for d in candidate_dirs("cifar10", root)]
    for folder in tried:
        if (folder / "test_batch").exists():
            return folder
    raise _missing("cifar10", root, tried, "cifar-10-batches-py/{data_batch_1..5,test_batch}")


def load_cifar10(split: str = "train", root: str | Path | None = None) -> ImageData:
    """CIFAR-10 from torchvision's on-disk pickle batches: x (N, 3, 32, 32) in [0, 1]."""
    folder = cifar10_dir(root)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    for n in names:
        path = folder / n
        if not path.exists():
            raise DataError(f"{path} missing: the CIFAR-10 folder {folder} is incomplete; fetch it again.")
        verify_file("cifar10", path)
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch["labels"], dtype=np.int64))
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
            raise DataError(f"{path}: not a CIFAR-10 pickle batch ({e!r}); delete and fetch again.") from None
        check_labels(path, ys[-1], len(CIFAR10_CLASSES), "cifar10")
    x = torch.from_numpy(np.concatenate(xs)).to(torch.get_default_dtype()).div_(255.0)
    return ImageData(x, torch.from_numpy(np.concatenate(ys)), CIFAR10_CLASSES, "cifar10")


def load_images(name: str, split: str, root: str | Path | None = None) -> ImageData:
    """Dispatch by dataset name: 'fashion-mnist' | 'cifar10'."""
    loaders = {"fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10}
    if name not in loaders:
        raise DataError(f"dataset {name!r} unknown; available: {', '.join(loaders)}.")
    return loaders[name](split, root)


@dataclass
class CharCorpus:
    """Character-level text: tokens int64 (T,), vocab as a string (id -> char)."""

    tokens: torch.Tensor
    vocab: str

    def split(self, train_fraction: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
        n = int(len(self.tokens) * train_fraction)
        return self.tokens[:n], self.tokens[n:]


def tinyshakespeare_dir(root: str | Path | None = None) -> Path:
    """First folder holding Tiny Shakespeare's input.txt."""
    tried = candidate_dirs("tinyshakespeare", root)
    for folder in tried:
        if (folder / "input.txt").exists():
            return folder
    raise _missing("tinyshakespeare", root, tried, "input.txt")


def read_corpus(path: Path) -> str:
    """The text of a corpus file; DataError (one line) if it cannot be read, is empty or is not UTF-8."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); Tiny "
                        f"Shakespeare's input.txt is plain text. Fix: replace it "
                        f"(`python -m claimbench.data fetch`).") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e}).") from None
    if not text:
        raise DataError(f"{path}: empty. Fix: replace it (`python -m claimbench.data fetch`).")
    return text


def load_tinyshakespeare(root: str | Path | None = None) -> CharCorpus:
    path = tinyshakespeare_dir(root) / "input.txt"
    verify_file("tinyshakespeare", path)
    text = read_corpus(path)
    vocab = "".join(sorted(set(text)))
    lut = {c: i for i, c in enumerate(vocab)}
    return CharCorpus(torch.tensor([lut[c] for c in text], dtype=torch.int64), vocab)


# ---------------------------------------------------------------- helpers


def generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def derive_seed(*keys: object) -> int:
    """A stable 31-bit seed from any keys (e.g. derive_seed('el2n', seed, 'prune'))."""
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def balanced_subset(y: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices (sorted) of `per_class` examples of every class, drawn without replacement."""
    g = generator(seed)
    picks = []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        if len(idx) < per_class:
            raise DataError(f"class {c} has {len(idx)} examples, fewer than the {per_class} asked for.")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.sort(torch.cat(picks)).values


def random_subset(n_total: int, n: int, seed: int) -> torch.Tensor:
    """Indices (sorted) of `n` of `n_total` items, drawn without replacement."""
    if n > n_total:
        raise DataError(f"asked for {n} examples but only {n_total} exist.")
    return torch.sort(torch.randperm(n_total, generator=generator(seed))[:n]).values


def inject_label_noise(
    y: torch.Tensor, fraction: float, num_classes: int, seed: int, mode: str = "flip"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt `fraction` of labels. Returns (new labels, bool mask of corrupted entries).

    mode 'flip': each chosen label is forced to a different class, uniformly (all chosen are wrong).
    mode 'permute': the chosen labels are shuffled among themselves (some may stay correct; the
    mask marks only those that changed).
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"label-noise fraction {fraction} not in [0, 1]")
    g = generator(seed)
    n = len(y)
    chosen = torch.randperm(n, generator=g)[: int(round(fraction * n))]
    new = y.clone()
    if mode == "flip":
        offset = torch.randint(1, num_classes, (len(chosen),), generator=g)
        new[chosen] = (y[chosen] + offset) % num_classes
    elif mode == "permute":
        new[chosen] = y[chosen][torch.randperm(len(chosen), generator=g)]
    else:
        raise ValueError(f"label-noise mode {mode!r} unknown; use 'flip' or 'permute'")
    return new, new != y


def random_labels(n: int, num_classes: int, seed: int) -> torch.Tensor:
    return torch.randint(0, num_classes, (n,), generator=generator(seed))


def gaussian_images(n: int, shape: tuple[int, ...], seed: int, like: ImageData | None = None) -> torch.Tensor:
    """(n, *shape) standard-normal images; if `like` is given, of its dtype and matched to its per-pixel mean/std."""
    x = torch.randn((n, *shape), generator=generator(seed), dtype=None if like is None else like.x.dtype)
    if like is not None:
        x = x * like.x.std(0, keepdim=True) + like.x.mean(0, keepdim=True)
    return x


def standardize_per_image(x: torch.Tensor) -> torch.Tensor:
    """tf.image.per_image_standardization: (x − mean) / max(std, 1/sqrt(numel)) per image; integers -> default dtype."""
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    flat = x.flatten(1)
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, unbiased=False, keepdim=True).clamp_min(1.0 / flat.shape[1] ** 0.5)
    return ((flat - mean) / std).view_as(x)


def normalize(x: torch.Tensor, mean: torch.Tensor | None = None, std: torch.Tensor | None = None):
    """Per-channel normalisation; statistics default to x's own (pass the train set's for test)."""
    dims = [0, 2, 3]
    mean = x.mean(dims, keepdim=True) if mean is None else mean
    std = x.std(dims, keepdim=True) if std is None else std
    return (x - mean) / std, mean, std


DEFAULT_DATASETS = ("fashion-mnist", "tinyshakespeare")
TINYSHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


def locate(name: str, root: str | Path | None = None) -> Path:
    """Folder of dataset `name` found by the search (for cifar10: the folder above cifar-10-batches-py)."""
    locators = {"fashion-mnist": fashion_mnist_dir, "tinyshakespeare": tinyshakespeare_dir,
                "cifar10": lambda r: cifar10_dir(r).parent}
    if name not in locators:
        raise DataError(f"dataset {name!r} unknown; available: {', '.join(locators)}.")
    return locators[name](root)


# ---------------------------------------------------------------- checksums and up-front checks

CHECKSUM_FILE = Path(__file__).with_name("data_checksums.json")
_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime_ns, kind) -> hex digest: each file hashed once per process
_READ: dict[str, str] = {}  # path -> sha256 of every dataset file verified in this process


@functools.cache
def expected_checksums() -> dict[str, dict[str, dict]]:
    """dataset -> file name (an IDX file without .gz) -> {'sha256' (IDX: of the uncompressed content),
    'bytes', 'gz_sha256' (known .gz copies)} or {'md5'} (CIFAR-10, torchvision's), from data_checksums.json."""
    return json.loads(CHECKSUM_FILE.read_text())["datasets"]


def _digest(path: Path, kind: str) -> str | None:
    """Hex digest of `path`: kind 'sha256' | 'md5' of its bytes, 'content' (sha256 of a .gz file's
    uncompressed bytes; None if it is not valid gzip). Cached by (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, kind)
    if key not in _DIGESTS:
        h = hashlib.md5(usedforsecurity=False) if kind == "md5" else hashlib.sha256()
        try:
            with (gzip.open if kind == "content" else open)(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except (EOFError, zlib.error, gzip.BadGzipFile):
            _DIGESTS[key] = None
        else:
            _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _mismatch(path: Path, kind: str, actual: str | None, expected: str) -> DataError:
    what = "sha256 of its gunzipped content" if kind == "content" else kind
    return DataError(
        f"{path}: checksum mismatch: {what} is {actual or '(not valid gzip)'}, expected {expected} "
        f"(claimbench/{CHECKSUM_FILE.name}); the file is corrupt or another release. "
        f"Fix: delete it and run `python -m claimbench.data fetch`, or copy a good one in its place."
    )


def verify_file(dataset: str, path: Path) -> str:
    """sha256 of `path`, a file of `dataset`, after checking it against data_checksums.json when that lists
    the file (a .gz IDX file passes if it is a known copy or its content matches). DataError (one line) on a
    mismatch. Recorded for `files_read()`."""
    try:
        sha = _digest(path, "sha256")
        stem = path.name.removesuffix(".gz")
        want = expected_checksums().get(dataset, {}).get(stem)
        if want and "md5" in want:
            if (md5 := _digest(path, "md5")) != want["md5"]:
                raise _mismatch(path, "md5", md5, want["md5"])
        elif want and path.name.endswith(".gz"):
            if sha not in want.get("gz_sha256", []) and (content := _digest(path, "content")) != want["sha256"]:
                raise _mismatch(path, "content", content, want["sha256"])
        elif want and sha != want["sha256"]:
            raise _mismatch(path, "sha256", sha, want["sha256"])
    except DataError:
        raise
    except OSError as e:  # (DataError subclasses OSError: re-raised above)
        raise DataError(f"{path}: cannot read ({e.strerror or e}).") from None
    _READ[str(path)] = sha
    return sha


def files_read() -> dict[str, str]:
    """path -> sha256 of every dataset file verified (so read) in this process, in first-read order."""
    return dict(_READ)


def dataset_files(name: str, folder: Path) -> list[Path]:
    """Every file of dataset `name` in `folder` (as `locate` returns it); DataError naming a missing one."""
    if name == "fashion-mnist":
        found = {stem: _find_idx(folder, stem) for stem in FASHION_FILES.values()}
        if lacking := [stem for stem, path in found.items() if path is None]:
            raise _incomplete_fashion(folder, lacking)
        return list(found.values())
    files = {"tinyshakespeare": [folder / "input.txt"],
             "cifar10": [folder / "cifar-10-batches-py" / n for n in [*(f"data_batch_{i}" for i in range(1, 6)),
                                                                        "test_batch"]]}.get(name)
    for path in files or []:
        if not path.exists():
            raise DataError(f"{path} missing: the {name} folder {path.parent} is incomplete. Fix: copy the file "
                            f"there, or delete the folder and run `python -m claimbench.data fetch`.")
    if files:
        return files
    raise DataError(f"dataset {name!r} unknown; available: fashion-mnist, tinyshakespeare, cifar10.")


def check_folder(name: str, folder: Path) -> dict[str, str]:
    """Check dataset `name` in `folder` as a run will read it: every file present, its checksum, and what is
    cheap to check beyond (Fashion-MNIST's labels in range, Tiny Shakespeare UTF-8). Returns path -> sha256."""
    out = {}
    for path in dataset_files(name, folder):
        out[str(path)] = verify_file(name, path)
        if name == "fashion-mnist" and "labels" in path.name:
            _fashion_labels(path)
        elif name == "tinyshakespeare":
            read_corpus(path)
    return out


def verify_present(name: str, root: str | Path | None = None) -> dict[str, str]:
    """`check_folder` on dataset `name` where the search finds it: path -> sha256, or a one-line DataError."""
    return check_folder(name, locate(name, root))


# Datasets a claim reads beyond its Config's `dataset` field (claims/<id>/train.py load_data).
CLAIM_DATASETS = {"activation_sparsity": ("fashion-mnist", "tinyshakespeare"), "neural_collapse": ("fashion-mnist",)}


def claim_datasets(claim_id: str, cfg: object) -> tuple[str, ...]:
    """The datasets claim `claim_id` reads under `cfg`: its `dataset` field if any, plus CLAIM_DATASETS'."""
    own = getattr(cfg, "dataset", None)
    return tuple(dict.fromkeys([*([own] if own else []), *CLAIM_DATASETS.get(claim_id, ())]))


def check_claim_inputs(ctx: Context) -> dict[str, str]:
    """Once, before any worker starts: every dataset file the claim reads is present and intact (one-line
    DataError otherwise, instead of one per run). Returns path -> sha256 (provenance's data_files)."""
    out = {}
    for name in claim_datasets(ctx.claim_id, ctx.cfg):
        out.update(verify_present(name, ctx.data_root))
    return out


def fetch_one(name: str, root: str | Path | None = None, online: bool = True) -> Path:
    """Folder of dataset `name`, its files checked (`check_folder`: present, checksums); downloaded into
    data-cache/ only when online and no folder is set explicitly."""
    try:
        folder = locate(name, root)
    except DataError as e:
        if not online or explicit_dir(root):
            raise
        not_found = e
    else:
        check_folder(name, folder)
        return folder
    try:
        folder = _download(name)
    except (OSError, RuntimeError, EOFError, HTTPException) as e:
        raise DataError(f"{not_found}\nThe download failed too: {_one_line(e)}") from None
    check_folder(name, folder)
    return folder


def _one_line(e: BaseException) -> str:
    """`Type: first line … last line` of an exception (torchvision's download errors span many lines)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [""]
    text = lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1]}"
    return f"{type(e).__name__}: {text}"


def fetch(root: str | Path | None = None, online: bool = True) -> dict[str, str]:
    """Make the default datasets available; return name -> folder. Downloads only if not found."""
    return {name: str(fetch_one(name, root, online)) for name in DEFAULT_DATASETS}


def _download(name: str) -> Path:
    """Download `name` into data-cache/<name>; on any failure remove the folders this call created, re-raise."""
    downloaders = {"fashion-mnist": _download_fashion_mnist, "cifar10": _download_cifar10,
                   "tinyshakespeare": _download_tinyshakespeare}
    if name not in downloaders:
        raise DataError(f"no download for {name!r}")
    cache = repo_root() / DOWNLOAD_CACHE
    target = cache / name
    made_cache, made_target = not cache.exists(), not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        downloaders[name](target)
    except BaseException:
        if made_target:
            shutil.rmtree(target, ignore_errors=True)
        if made_cache and cache.is_dir() and not any(cache.iterdir()):
            cache.rmdir()
        raise
    return target


def _download_fashion_mnist(target: Path) -> None:
    import torchvision

    torchvision.datasets.FashionMNIST(str(target), download=True)


def _download_cifar10(target: Path) -> None:
    import torchvision

    torchvision.datasets.CIFAR10(str(target), download=True)


def _download_tinyshakespeare(target: Path) -> None:
    import urllib.request

    part = target / "input.txt.part"
    try:
        urllib.request.urlretrieve(TINYSHAKESPEARE_URL, part)
        part.replace(target / "input.txt")
    finally:
        part.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m claimbench.data fetch [--offline] [--cifar10] [--allow-missing]`: locate or download the datasets.

    Exit 0 when every dataset was found or downloaded; 2 (one `error:` message per missing dataset) when one
    cannot be had, unless --allow-missing, which prints those messages as `warning:` and exits 0.
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m claimbench.data")
    ap.add_argument("command", choices=["fetch"])
    ap.add_argument("--root", default=None, help="explicit data folder (as data.root: the only place searched)")
    ap.add_argument("--offline", action="store_true", help="only look, never download")
    ap.add_argument("--cifar10", action="store_true", help="also download CIFAR-10 (online only)")
    ap.add_argument("--allow-missing", action="store_true", help="warn and exit 0 when a dataset cannot be had")
    args = ap.parse_args(argv)
    names = [*DEFAULT_DATASETS, "cifar10"] if args.cifar10 else list(DEFAULT_DATASETS)
    missing = 0
    for name in names:
        try:
            print(f"{name}: {fetch_one(name, args.root, online=not args.offline)}")
        except DataError as e:
            missing += 1
            print(f"{'warning' if args.allow_missing else 'error'}: {e}", file=sys.stderr)
    return 2 if missing and not args.allow_missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
