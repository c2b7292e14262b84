"""Recorded inputs (issue 21 items 5 and 8): dataset checksums checked at load, provenance's package versions
and data files, and data faults reported in one line, once, before any worker starts."""

import dataclasses
import gzip
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from test_data import make_cifar_fixture, make_fashion, write_idx

from claimbench import data, stage
from claimbench.claims import registry
from claimbench.errors import DataError
from claimbench.provenance import package_versions, provenance

FIX = "Fix: delete it and run `python -m claimbench.data fetch`, or copy a good one in its place."


@pytest.fixture
def unchecked(monkeypatch):
    """Generated stand-ins carry the real files' names but not their contents: no checksums are expected."""
    monkeypatch.setattr(data, "expected_checksums", lambda: {})


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def linked_copy(name, dest):
    """dest/<name>/ with a symbolic link to each file of the real dataset `name` (replace one to corrupt it)."""
    folder = dest / name
    folder.mkdir(parents=True)
    for p in data.dataset_files(name, data.locate(name)):
        (folder / p.name).symlink_to(p)
    return folder


def test_the_checksum_file_covers_every_file_the_loaders_read():
    want = data.expected_checksums()
    assert set(want["fashion-mnist"]) == set(data.FASHION_FILES.values())
    assert {n: e["bytes"] for n, e in want["fashion-mnist"].items()} == {
        "train-images-idx3-ubyte": 16 + 60000 * 784, "train-labels-idx1-ubyte": 8 + 60000,
        "t10k-images-idx3-ubyte": 16 + 10000 * 784, "t10k-labels-idx1-ubyte": 8 + 10000}
    assert want["tinyshakespeare"]["input.txt"]["bytes"] == 1115394
    assert sorted(want["cifar10"]) == [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    digests = [e["sha256"] for d in ("fashion-mnist", "tinyshakespeare") for e in want[d].values()]
    assert all(len(h) == 64 for h in digests) and all(len(e["md5"]) == 32 for e in want["cifar10"].values())


@pytest.mark.needs_data("tinyshakespeare")
def test_one_corrupted_byte_gives_exactly_one_line(tmp_path):
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    raw = bytearray((data.tinyshakespeare_dir() / "input.txt").read_bytes())
    raw[1000] ^= 0x01  # still ASCII: only the checksum can tell
    (folder / "input.txt").write_bytes(raw)
    with pytest.raises(DataError) as e:
        data.load_tinyshakespeare(tmp_path)
    expected = data.expected_checksums()["tinyshakespeare"]["input.txt"]["sha256"]
    assert str(e.value) == (f"{folder / 'input.txt'}: checksum mismatch: sha256 is {sha256(raw)}, expected {expected} "
                            f"(claimbench/data_checksums.json); the file is corrupt or another release. {FIX}")


@pytest.mark.needs_data
def test_a_corrupted_gz_is_caught_and_a_recompressed_or_raw_copy_of_the_same_content_passes(tmp_path):
    folder = linked_copy("fashion-mnist", tmp_path)
    gz = folder / "t10k-labels-idx1-ubyte.gz"
    content = gzip.decompress(gz.read_bytes())
    real_y = data.load_fashion_mnist("test").y
    gz.unlink()
    blob = bytearray(gzip.compress(content, mtime=0))
    blob[len(blob) // 2] ^= 0xFF
    gz.write_bytes(blob)
    with pytest.raises(DataError) as e:
        data.load_fashion_mnist("test", tmp_path)
    want = data.expected_checksums()["fashion-mnist"]["t10k-labels-idx1-ubyte"]["sha256"]
    assert str(e.value) == (f"{gz}: checksum mismatch: sha256 of its gunzipped content is (not valid gzip), expected "
                            f"{want} (claimbench/data_checksums.json); the file is corrupt or another release. {FIX}")
    gz.write_bytes(gzip.compress(content, compresslevel=1, mtime=0))  # another gzip of the same bytes
    assert torch.equal(data.load_fashion_mnist("test", tmp_path).y, real_y)
    gz.unlink()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(content)  # uncompressed, as torchvision leaves it
    assert torch.equal(data.load_fashion_mnist("test", tmp_path).y, real_y)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(content[:-1] + b"\x03")
    with pytest.raises(DataError, match=f"t10k-labels-idx1-ubyte: checksum mismatch: sha256 is [0-9a-f]{{64}}, "
                                        f"expected {want}"):
        data.load_fashion_mnist("test", tmp_path)


def test_each_file_is_hashed_once_per_version(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_bytes(b"abc")
    before = len(data._DIGESTS)
    assert data.verify_file("unlisted", p) == data.verify_file("unlisted", p) == sha256(b"abc")
    assert len(data._DIGESTS) == before + 1
    p.write_bytes(b"abcd")  # a new size (and mtime): hashed again
    assert data.verify_file("unlisted", p) == sha256(b"abcd") and data.files_read()[str(p)] == sha256(b"abcd")


@pytest.mark.needs_data
def test_provenance_of_a_ci_scale_load_lists_the_checksums(monkeypatch):
    monkeypatch.setattr(data, "_READ", {})
    ctx = stage.make_context("neural_collapse", "ci", root=REPO)
    registry()["neural_collapse"].train.load_data(ctx)
    prov = provenance(torch.device("cpu"), 1.0, [0], "ci")
    files = data.dataset_files("fashion-mnist", data.locate("fashion-mnist"))
    assert prov["data_files"] == {str(p): sha256(p.read_bytes()) for p in files}
    assert data.check_claim_inputs(ctx) == prov["data_files"]
    assert prov["packages"]["numpy"] == np.__version__ and prov["packages"]["PyYAML"]
    assert set(prov["packages"]) == {"numpy", "scipy", "pandas", "timm", "matplotlib", "seaborn", "PyYAML", "dvc"}


def test_package_versions_come_from_metadata_and_never_import_dvc():
    assert package_versions(("numpy", "no-such-distribution")) == {"numpy": np.__version__,
                                                                    "no-such-distribution": None}
    code = "import sys, claimbench.provenance as p; p.package_versions(); print('dvc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    assert out.stdout.strip() == "False", out.stderr[-2000:]


@pytest.mark.parametrize("checked", [True, False])
def test_a_binary_tinyshakespeare_is_one_line(tmp_path, monkeypatch, checked):
    if not checked:
        monkeypatch.setattr(data, "expected_checksums", lambda: {})
    path = tmp_path / "tinyshakespeare" / "input.txt"
    path.parent.mkdir()
    path.write_bytes(b"F\xff\xfe\x00\x01binary")
    with pytest.raises(DataError) as e:
        data.load_tinyshakespeare(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    assert ("checksum mismatch" if checked else "not UTF-8 text (byte 0xff at offset 1)") in msg


@pytest.mark.usefixtures("unchecked")
@pytest.mark.parametrize("where", ["root", "default"])
def test_a_missing_test_labels_file_is_named_exactly(tmp_path, data_less_repo, where):
    base = tmp_path / ("mine" if where == "root" else "shared/data")
    folder = make_fashion(base / "fashion-mnist")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as e:
        data.load_fashion_mnist("train", base if where == "root" else None)
    assert str(e.value) == (
        f"dataset 'fashion-mnist' incomplete: {folder} lacks t10k-labels-idx1-ubyte[.gz] (it holds the other IDX "
        f"files). Fix: copy the missing file there, or delete the folder and run `python -m claimbench.data fetch`.")


@pytest.mark.usefixtures("unchecked")
def test_out_of_range_labels_name_the_file_the_value_and_the_range(tmp_path):
    folder = make_fashion(tmp_path / "fashion-mnist")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 200, 3], np.uint8))
    with pytest.raises(DataError) as e:
        data.load_fashion_mnist("test", tmp_path)
    assert str(e.value) == (f"{folder / 't10k-labels-idx1-ubyte.gz'}: label 200 out of range: fashion-mnist labels "
                            f"are 0..9 (1 of 3 outside); the file is corrupt or not fashion-mnist. Fix: replace it "
                            f"(`python -m claimbench.data fetch`).")
    batches = make_cifar_fixture(tmp_path / "c")
    batch = {"data": np.zeros((2, 3072), np.uint8), "labels": [1, 12]}
    (batches / "test_batch").write_bytes(__import__("pickle").dumps(batch))
    with pytest.raises(DataError, match=r"test_batch: label 12 out of range: cifar10 labels are 0\.\.9 \(1 of 2"):
        data.load_cifar10("test", tmp_path / "c")


def _boom(*args, **kwargs):
    raise AssertionError("execute ran: the data should have been checked before any worker started")


@pytest.mark.usefixtures("unchecked")
def test_the_train_stage_checks_the_data_once_before_any_worker(toy_root, monkeypatch, capsys):
    monkeypatch.setitem(data.CLAIM_DATASETS, "toy", ("fashion-mnist",))
    folder = make_fashion(toy_root / "d" / "fashion-mnist")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("CLAIMBENCH_DATA", str(toy_root / "d"))
    monkeypatch.setattr(stage, "execute", _boom)
    assert stage.main("toy", ["train"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "lacks t10k-labels-idx1-ubyte[.gz]" in errors[0] and "Traceback" not in err


@pytest.mark.needs_data
def test_the_train_stage_records_the_data_files_and_analyse_puts_them_in_provenance(toy_root, monkeypatch):
    monkeypatch.setitem(data.CLAIM_DATASETS, "toy", ("fashion-mnist",))
    assert stage.main("toy", ["train"]) == 0
    recorded = json.loads((toy_root / "artifacts/ci/toy" / stage.TRAIN_INFO).read_text())["data_files"]
    files = data.dataset_files("fashion-mnist", data.locate("fashion-mnist"))
    assert recorded == {str(p): sha256(p.read_bytes()) for p in files}
    monkeypatch.setattr(data, "_READ", {})  # analyse in a fresh process, as dvc runs it: nothing read there
    assert stage.main("toy", ["analyse"]) == 0
    assert json.loads((toy_root / "results/ci/toy/metrics.json").read_text())["provenance"]["data_files"] == recorded


LOADERS = {"load_fashion_mnist": "fashion-mnist", "load_tinyshakespeare": "tinyshakespeare"}


@pytest.mark.parametrize("claim_id", sorted(registry()))
def test_every_claim_declares_the_datasets_its_train_side_loads(claim_id):
    """What check_claim_inputs checks up front is what the claim's train side reads (a new loader call in a
    claim without a CLAIM_DATASETS entry fails here)."""
    entry = registry()[claim_id]
    source = "\n".join(p.read_text() for p in entry.folder.glob("*.py") if p.name not in ("analyse.py", "figures.py"))
    declared = set(data.CLAIM_DATASETS.get(claim_id, ()))
    for loader, name in LOADERS.items():
        assert (loader in source) == (name in declared), f"{claim_id}: {loader} vs CLAIM_DATASETS"
    has_field = "dataset" in {f.name for f in dataclasses.fields(entry.Config)}
    assert ("load_images" in source) == has_field
    ctx = stage.make_context(claim_id, "ci", root=REPO)
    assert set(data.claim_datasets(claim_id, ctx.cfg)) == declared | ({ctx.cfg.dataset} if has_field else set())


def test_claim_datasets_known_answers():
    cifar = type("Cfg", (), {"dataset": "cifar10"})()
    assert data.claim_datasets("el2n_pruning", cifar) == ("cifar10",)
    assert data.claim_datasets("activation_sparsity", object()) == ("fashion-mnist", "tinyshakespeare")
    assert data.claim_datasets("toy", object()) == ()
