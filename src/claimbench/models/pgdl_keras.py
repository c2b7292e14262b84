"""Read a PGDL public-data task folder (Jiang et al. 2020) without TensorFlow: Keras HDF5 kernels via h5py.

Layout (organizers' ``data_manager_public.py``)::

    <task>/model_configs.json      {"<model_id>": {"hparams": {name: {"current_value": v, ...}},
                                                   "metrics": {"train_acc": a, "test_acc": b}}, ...}
    <task>/model_<id>/config.json  Keras Sequential definition + "input_shape"
    <task>/model_<id>/weights.hdf5 final weights (Keras ``save_weights`` or full-model ``save`` layout)

Keras kernels are conv (kh, kw, in, out) and dense (in, out); `to_torch_layout` turns them into torch's
(out, in, kh, kw) / (out, in) so the same spectral code analyses both (singular values are unchanged:
Keras slice W[i, j] is the transpose of torch slice T[:, :, i, j]). Biases are ignored, as in WeightWatcher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from claimbench.errors import DataError


@dataclass
class PGDLModel:
    """One trained model of a PGDL task. kernels: layer name -> torch-layout float32 tensor, in file order;
    conv_layers: number of 4-D kernels (the depth used for grouping)."""

    model_id: str
    kernels: dict[str, torch.Tensor]
    train_acc: float
    test_acc: float
    hparams: dict = field(default_factory=dict)

    @property
    def conv_layers(self) -> int:
        return sum(k.dim() == 4 for k in self.kernels.values())


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def read_keras_kernels(path: Path) -> dict[str, np.ndarray]:
    """Layer name -> kernel array (Keras layout) of every layer with a 2-D or 4-D 'kernel' weight."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 weights file ({e}); re-extract the PGDL archive.") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise DataError(f"{path}: no 'layer_names' attribute; not a Keras weights file (save_weights/save).")
        out = {}
        for layer in (_text(n) for n in root.attrs["layer_names"]):
            group = root[layer]
            for wname in (_text(n) for n in group.attrs.get("weight_names", [])):
                if wname.split("/")[-1].split(":")[0] != "kernel":
                    continue
                arr = np.asarray(group[wname], dtype=np.float32)
                if arr.ndim in (2, 4):
                    out[layer] = arr
    if not out:
        raise DataError(f"{path}: holds no Dense/Conv2D kernels; nothing to analyse.")
    return out


def to_torch_layout(kernel: np.ndarray) -> torch.Tensor:
    """Keras (kh, kw, in, out) -> torch (out, in, kh, kw); (in, out) -> (out, in)."""
    t = torch.from_numpy(np.ascontiguousarray(kernel))
    return t.permute(3, 2, 0, 1).contiguous() if t.dim() == 4 else t.t().contiguous()


def _current_hparams(entry: dict) -> dict:
    hp = entry.get("hparams", {})
    return {k: (v.get("current_value") if isinstance(v, dict) else v) for k, v in hp.items()}


def load_pgdl_task(task_dir: str | Path) -> list[PGDLModel]:
    """Every model of a PGDL task folder with its kernels, hparams and train/test accuracy."""
    task_dir = Path(task_dir)
    cfg_path = task_dir / "model_configs.json"
    if not cfg_path.exists():
        raise DataError(f"{task_dir} is not a PGDL task folder: {cfg_path.name} missing. Point "
                        f"simpson_paradox.pgdl_task at a folder like public_data/input_data/task1_v4.")
    try:
        configs = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{cfg_path}: invalid JSON ({e}).") from None
    models = []
    for model_dir in sorted(p for p in task_dir.glob("model_*") if p.is_dir()):
        model_id = model_dir.name.removeprefix("model_")
        entry = configs.get(model_id, configs.get(model_dir.name))
        if entry is None:
            raise DataError(f"{cfg_path}: no entry for {model_dir.name}; the task folder is incomplete.")
        for need in ("config.json", "weights.hdf5"):
            if not (model_dir / need).exists():
                raise DataError(f"{model_dir}: {need} missing; re-extract the PGDL archive.")
        metrics = entry.get("metrics", {})
        if "test_acc" not in metrics or "train_acc" not in metrics:
            raise DataError(f"{cfg_path}: model {model_id} lacks metrics.train_acc/test_acc.")
        kernels = {k: to_torch_layout(v) for k, v in read_keras_kernels(model_dir / "weights.hdf5").items()}
        models.append(PGDLModel(model_id, kernels, float(metrics["train_acc"]), float(metrics["test_acc"]),
                                _current_hparams(entry)))
    if not models:
        raise DataError(f"{task_dir}: no model_* folders found.")
    return models
