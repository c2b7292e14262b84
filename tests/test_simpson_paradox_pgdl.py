"""The PGDL reader on a tiny generated task folder in the organizers' layout (Keras HDF5 kernels)."""

import json
from dataclasses import replace

import h5py
import numpy as np
import pytest
import torch

from claimbench import executor
from claimbench.claims import load_params
from claimbench.claims.simpson_paradox import analyse as A
from claimbench.claims.simpson_paradox import figures as F
from claimbench.claims.simpson_paradox import train as T
from claimbench.contract import Context
from claimbench.errors import DataError
from claimbench.metrics.spectral import analyze_model
from claimbench.models.pgdl_keras import load_pgdl_task, read_keras_kernels, to_torch_layout


def write_keras_weights(path, layers: dict[str, dict[str, np.ndarray]], full_model: bool = False) -> None:
    """Keras HDF5 layout: root (or 'model_weights') attr layer_names; per layer attr weight_names + datasets."""
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model else f
        root.attrs["layer_names"] = np.array([n.encode() for n in layers])
        for lname, weights in layers.items():
            g = root.create_group(lname)
            names = [f"{lname}/{w}:0" for w in weights]
            g.attrs["weight_names"] = np.array([n.encode() for n in names])
            for n, arr in zip(names, weights.values()):
                g.create_dataset(n, data=arr)


def keras_layers(conv_blocks: int, rng) -> dict:
    """Conv kernels (3, 3, in, out) x 2 per block, a flatten-less dense (in, out) and a head."""
    layers, c = {}, 3
    for b in range(conv_blocks):
        for k in range(2):
            layers[f"conv2d_{2 * b + k}"] = {"kernel": rng.normal(size=(3, 3, c, 16)).astype(np.float32),
                                             "bias": np.zeros(16, np.float32)}
            c = 16
    layers["max_pooling2d"] = {}
    layers["dense"] = {"kernel": rng.normal(size=(16, 32)).astype(np.float32), "bias": np.zeros(32, np.float32)}
    layers["dense_1"] = {"kernel": rng.normal(size=(32, 10)).astype(np.float32), "bias": np.zeros(10, np.float32)}
    return layers


def make_task(root, per_depth: int = 3, full_model: bool = False):
    rng = np.random.default_rng(0)
    configs = {}
    for i in range(2 * per_depth):
        blocks = 1 if i < per_depth else 3
        d = root / f"model_{i + 1}"
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"model_config": [], "input_shape": [32, 32, 3]}))
        write_keras_weights(d / "weights.hdf5", keras_layers(blocks, rng), full_model)
        configs[str(i + 1)] = {"hparams": {"hp.depth": {"current_value": blocks, "possible_values": [1, 3]}},
                               "metrics": {"train_acc": 0.9 + 0.01 * i, "test_acc": 0.6 + 0.02 * i}}
    (root / "model_configs.json").write_text(json.dumps(configs))
    return root


@pytest.mark.parametrize("full_model", [False, True])
def test_reader_returns_kernels_in_torch_layout(tmp_path, full_model):
    task = make_task(tmp_path / "task1_v4", full_model=full_model)
    models = load_pgdl_task(task)
    assert [m.model_id for m in models] == ["1", "2", "3", "4", "5", "6"]
    assert [m.conv_layers for m in models] == [2, 2, 2, 6, 6, 6]
    m = models[0]
    assert list(m.kernels) == ["conv2d_0", "conv2d_1", "dense", "dense_1"]  # biases and pools skipped
    assert m.kernels["conv2d_0"].shape == (16, 3, 3, 3) and m.kernels["dense"].shape == (32, 16)
    assert m.hparams == {"hp.depth": 1} and m.test_acc == pytest.approx(0.6)
    raw = read_keras_kernels(task / "model_1" / "weights.hdf5")
    # Keras slice W[i, j] (in, out) is the transpose of the torch slice T[:, :, i, j] (out, in)
    np.testing.assert_array_equal(m.kernels["conv2d_1"][:, :, 2, 0].numpy(), raw["conv2d_1"][2, 0].T)


def test_keras_metrics_equal_the_same_weights_in_a_torch_module(tmp_path):
    """Known answer: the Keras path gives exactly the spectral metrics of the equivalent torch layers."""
    rng = np.random.default_rng(1)
    conv, dense = rng.normal(size=(3, 3, 8, 16)).astype(np.float32), rng.normal(size=(64, 24)).astype(np.float32)
    write_keras_weights(tmp_path / "w.hdf5", {"c": {"kernel": conv}, "d": {"kernel": dense}})
    kernels = {k: to_torch_layout(v) for k, v in read_keras_kernels(tmp_path / "w.hdf5").items()}
    got = A.model_metrics(kernels, min_evals=10)
    net = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3), torch.nn.Linear(64, 24))
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(conv).permute(3, 2, 0, 1))
        net[1].weight.copy_(torch.from_numpy(dense).T)
    want = analyze_model(net)
    assert got["analysed_layers"] == 2
    for metric in A.METRICS:
        assert got[metric] == pytest.approx(float(want[metric].mean()), rel=1e-9), metric


def test_analyse_runs_on_a_pgdl_task_folder(tmp_path, monkeypatch):
    task = make_task(tmp_path / "task1_v4")
    params = load_params(sp_params(), "ci")
    cfg = replace(params.claims["simpson_paradox"], pgdl_task=str(task), n_boot=20)
    ctx = Context("simpson_paradox", "ci", cfg, params, torch.device("cpu"), tmp_path)
    assert T.plan(ctx) == []  # the task's models are trained already: no runs
    report = executor.execute(ctx, T)
    assert report.records == [] and report.submitted == 0 and not ctx.runs_dir.exists()
    res = A.analyse(executor.collect(ctx, T), ctx)
    F.figures(res, ctx)
    assert res.statistics["models"] == 6 and res.statistics["depth_groups"] == 2
    assert set(res.tables["corpus"]["conv_layers"]) == {2, 6}
    assert list(res.tables["corpus"]["model_id"]) == [str(i) for i in range(1, 7)]
    assert res.details["corpus_training"] == {} and res.setup["dataset"] == str(task)
    assert (ctx.figures_dir / "simpson_log_spectral_norm.png").exists()


def sp_params():
    from conftest import REPO

    return REPO / "params.yaml"


@pytest.mark.parametrize("breakage, match", [
    ("no_configs", "model_configs.json missing"),
    ("no_weights", "weights.hdf5 missing"),
    ("not_hdf5", "not a readable HDF5"),
    ("no_metrics", "lacks metrics"),
])
def test_broken_task_folders_get_one_clear_error(tmp_path, breakage, match):
    task = make_task(tmp_path / "t", per_depth=1)
    if breakage == "no_configs":
        (task / "model_configs.json").unlink()
    elif breakage == "no_weights":
        (task / "model_2" / "weights.hdf5").unlink()
    elif breakage == "not_hdf5":
        (task / "model_2" / "weights.hdf5").write_text("not hdf5")
    else:
        (task / "model_configs.json").write_text(json.dumps({"1": {"metrics": {}}, "2": {"metrics": {}}}))
    with pytest.raises(DataError, match=match):
        load_pgdl_task(task)
