"""The run variants of activation sparsity (image recipes) and their data, each part loaded on first use."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Literal

import torch
from torch import nn

from claimbench.claims.activation_sparsity import Config, topk_k
from claimbench.data import (
    CharCorpus,
    derive_seed,
    gaussian_images,
    inject_label_noise,
    load_fashion_mnist,
    load_tinyshakespeare,
    normalize,
    random_labels,
)
from claimbench.models.relu_transformers import TwoLayerMLP, mixer, vit


@dataclass(frozen=True)
class ImageRun:
    """Recipe of one image run: which model, which inputs and labels, how long, whether to classify."""

    model: Literal["vit_small", "vit_large", "mixer", "mlp"]
    topk: bool = False                                   # Top-k ReLU (k = topk_k(cfg)) in the MLPs
    inputs: Literal["fashion", "gaussian"] = "fashion"   # Fashion-MNIST or N(0, 1) images
    labels: Literal["true", "random", "noisy"] = "true"  # noisy: cfg.label_noise of them flipped
    steps_field: Literal["steps", "variant_steps", "other_steps"] = "steps"  # Config field: optimiser steps
    classify: bool = True                                # measure test accuracy, ECE, corrupted accuracy


IMAGE_RUNS = {
    "vit_small": ImageRun("vit_small"),
    "vit_large": ImageRun("vit_large"),
    "vit_topk": ImageRun("vit_small", topk=True),
    "random_labels": ImageRun("vit_small", labels="random", steps_field="variant_steps", classify=False),
    "random_inputs": ImageRun("vit_small", inputs="gaussian", labels="random", steps_field="variant_steps",
                              classify=False),
    "mixer": ImageRun("mixer", steps_field="other_steps"),
    "mlp": ImageRun("mlp", steps_field="other_steps"),
}
LABEL_NOISE_RUNS = {
    "label_noise_base": ImageRun("vit_small", labels="noisy", steps_field="variant_steps"),
    "label_noise_topk": ImageRun("vit_small", topk=True, labels="noisy", steps_field="variant_steps"),
}


def build_model(cfg: Config, model: str, topk: bool) -> nn.Module:
    """A fresh (untrained, on the CPU) image model of `cfg` for 28×28 one-channel inputs."""
    if model == "vit_small":
        return vit(**asdict(cfg.vit_small), patch_size=cfg.patch_size, topk=topk_k(cfg) if topk else None)
    if model == "vit_large":
        return vit(**asdict(cfg.vit_large), patch_size=cfg.patch_size)
    if model == "mixer":
        return mixer(cfg.mixer_dim, cfg.mixer_depth, cfg.patch_size)
    return TwoLayerMLP(28 * 28, cfg.mlp_hidden)


@dataclass
class ImageTask:
    """Normalised Fashion-MNIST tensors on the device; raw test images kept for corruption.
    x_*: (N, 1, 28, 28); y_*: (N,) class indices; mean, std: (1, 1, 1, 1) of the training images."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_test_raw: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


def image_task(cfg: Config, data_root: str | None, device: torch.device) -> ImageTask:
    """The first cfg.train_examples training and cfg.eval_examples test images, normalised by the former."""
    tr, te = load_fashion_mnist("train", data_root), load_fashion_mnist("test", data_root)
    tr = tr.subset(torch.arange(min(cfg.train_examples, len(tr))))
    te = te.subset(torch.arange(min(cfg.eval_examples, len(te))))
    x_train, mean, std = normalize(tr.x)
    x_test, _, _ = normalize(te.x, mean, std)
    d = device
    return ImageTask(x_train.to(d), tr.y.to(d), x_test.to(d), te.y.to(d), te.x.to(d), mean.to(d), std.to(d))


class Data:
    """The runs' data in one process, each part loaded on first use (a process that trains only image
    runs never reads Tiny Shakespeare, one without Gaussian-input runs never draws those images). The
    random inputs and labels are drawn from the run's seed (one draw per seed, cached)."""

    def __init__(self, cfg: Config, data_root: str | None, device: torch.device):
        self.cfg, self.data_root, self.device = cfg, data_root, device
        self._drawn: dict[tuple[str, int], torch.Tensor] = {}

    @cached_property
    def images(self) -> ImageTask:
        return image_task(self.cfg, self.data_root, self.device)

    @cached_property
    def corpus(self) -> CharCorpus:
        return load_tinyshakespeare(self.data_root)

    def _draw(self, what: str, seed: int) -> torch.Tensor:
        """(N, 1, 28, 28) standard-normal images ('random_inputs'), uniform labels ('random_labels') or the
        training labels with cfg.label_noise of them flipped to another class ('label_noise');
        N = the training images used."""
        if (what, seed) not in self._drawn:
            n, s = len(self.images.y_train), derive_seed(what, seed)
            if what == "random_inputs":
                t = gaussian_images(n, (1, 28, 28), s)
            elif what == "random_labels":
                t = random_labels(n, 10, s)
            else:
                t, _ = inject_label_noise(self.images.y_train.cpu(), self.cfg.label_noise, 10, s)
            self._drawn[(what, seed)] = t.to(self.device)
        return self._drawn[(what, seed)]

    def inputs(self, which: str, seed: int) -> torch.Tensor:
        return self._draw("random_inputs", seed) if which == "gaussian" else self.images.x_train

    def labels(self, which: str, seed: int) -> torch.Tensor:
        if which == "true":
            return self.images.y_train
        return self._draw("random_labels" if which == "random" else "label_noise", seed)
