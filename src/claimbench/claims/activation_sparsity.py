"""Claim 3: emergent activation sparsity in ReLU Transformers ("The Lazy Neuron Phenomenon").

Claim: in Transformers whose MLPs use ReLU, the share of nonzero post-ReLU activations per token falls
during training from ≈50% at initialisation to a small value (paper: 3.0% T5-Base, 6.3% ViT-B/16), on
train and held-out data, at every depth; larger models are sparser; it also happens with random labels,
random inputs and never-repeated data. Top-k activations keep accuracy and improve calibration.
Source: Li, You, Bhojanapalli et al., ICLR 2023, arXiv 2210.06313; spec /work/shared/specs/3-activation-sparsity.md.

Ours: timm ViTs (two sizes) on Fashion-MNIST, a nanoGPT-style char LM on Tiny Shakespeare, variants
(random labels; Gaussian inputs + random labels; Top-k; optional 40% label noise), a timm MLP-Mixer and a
2-layer MLP. Nonzero % is measured by forward hooks (fp32, eval mode) at log-spaced steps.
Expected cost (2-core CPU): ci ≈ 7 s wall from scratch; quick ≈ 4.5 min wall (measured at load 1–2;
12 min when the CPU was shared at load 4–9); gpu ≈ 3 min on one H100 (not yet measured); paper = larger
ViT / LM on the same data for 60k steps (hours). The paper's own runs (ViT-B/16 on ImageNet-21k, T5-Base
on C4) are far beyond this suite.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import pandas as pd
import torch

from claimbench.data import (
    derive_seed,
    gaussian_images,
    generator,
    inject_label_noise,
    load_fashion_mnist,
    load_tinyshakespeare,
    normalize,
    random_labels,
)
from claimbench.metrics.activation_sparsity import log_spaced_steps, sparsity_record
from claimbench.metrics.calibration import expected_calibration_error, reliability_bins
from claimbench.models.relu_transformers import CharTransformer, TwoLayerMLP, char_windows, mixer, vit
from claimbench.params import in_unit_interval, positive
from claimbench.results import ClaimResult
from claimbench.stage import Context
from claimbench.sweep import Progress, run_cached
from claimbench.train import Callback, TrainConfig, TrainState, fit, predict, prepare_model, seed_everything

CLAIM_ID = "activation_sparsity"


@dataclass(frozen=True)
class ViTSize:
    """One timm ViT size: width, depth, heads, MLP ratio (d_ff = embed_dim × mlp_ratio)."""

    embed_dim: int = field(metadata=positive())
    depth: int = field(metadata=positive())
    num_heads: int = field(metadata=positive())
    mlp_ratio: float = field(metadata=positive())


@dataclass(frozen=True)
class Config:
    seed: int
    patch_size: int = field(metadata=positive())          # 28×28 images → (28/patch)² tokens + CLS
    train_examples: int = field(metadata=positive())      # Fashion-MNIST training images used (≤ 60000)
    probe_examples: int = field(metadata=positive())      # train and test images on which nnz% is measured
    eval_examples: int = field(metadata=positive())       # test images for accuracy / ECE / corruption
    batch_size: int = field(metadata=positive())
    lr: float = field(metadata=positive())
    weight_decay: float
    warmup_steps: int
    schedule: Literal["constant", "cosine"]
    steps: int = field(metadata=positive())               # ViT baselines and Top-k
    variant_steps: int = field(metadata=positive())       # random labels / random inputs / label noise
    n_measurements: int = field(metadata=positive())      # log-spaced nnz% measurements per run
    vit_small: ViTSize                                    # reference model (A1, A2, A4, A5)
    vit_large: ViTSize                                    # wider and deeper (A3)
    topk_fraction: float = field(metadata=in_unit_interval())   # k = round(d_ff × fraction)
    corruption_sigma: float                               # Gaussian noise std in [0, 1] pixel space
    label_noise: float = field(metadata=in_unit_interval())     # 0 = skip the label-noise pair
    lm_d_model: int = field(metadata=positive())
    lm_layers: int = field(metadata=positive())
    lm_heads: int = field(metadata=positive())
    lm_block_size: int = field(metadata=positive())
    lm_steps: int = field(metadata=positive())
    lm_batch_size: int = field(metadata=positive())
    lm_lr: float = field(metadata=positive())
    lm_probe_windows: int = field(metadata=positive())
    other_steps: int = field(metadata=positive())         # MLP-Mixer and 2-layer MLP
    mixer_dim: int = field(metadata=positive())
    mixer_depth: int = field(metadata=positive())
    mlp_hidden: int = field(metadata=positive())


# ----------------------------------------------------------------------------- measurement during training


class SparsityTracker(Callback):
    """Records nnz% (per layer, per probe set) at the given optimiser steps, step 0 included."""

    def __init__(self, probes: dict[str, torch.Tensor], steps: list[int]):
        self.probes, self.steps, self.records = probes, set(steps), []

    def _measure(self, state: TrainState) -> None:
        rec = sparsity_record(state.model, self.probes)
        self.records.append({"step": state.step, **rec})

    def on_start(self, state: TrainState) -> None:
        self._measure(state)

    def on_step_end(self, state: TrainState) -> None:
        if state.step in self.steps:
            self._measure(state)

    def state_dict(self) -> dict:
        return {"records": self.records}

    def load_state_dict(self, d: dict) -> None:
        self.records = d["records"]


@dataclass
class ImageTask:
    """Normalised Fashion-MNIST tensors on the device; raw test images kept for corruption."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_test_raw: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


def image_task(ctx: Context) -> ImageTask:
    cfg = ctx.cfg
    tr, te = load_fashion_mnist("train", ctx.data_root), load_fashion_mnist("test", ctx.data_root)
    tr = tr.subset(torch.arange(min(cfg.train_examples, len(tr))))
    te = te.subset(torch.arange(min(cfg.eval_examples, len(te))))
    x_train, mean, std = normalize(tr.x)
    x_test, _, _ = normalize(te.x, mean, std)
    d = ctx.device
    return ImageTask(x_train.to(d), tr.y.to(d), x_test.to(d), te.y.to(d), te.x.to(d), mean.to(d), std.to(d))


def image_train_config(cfg: Config, steps: int) -> TrainConfig:
    return TrainConfig(epochs=10**6, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="adamw",
                       weight_decay=cfg.weight_decay, schedule=cfg.schedule, warmup_steps=cfg.warmup_steps,
                       drop_last=True)


def d_ff(size: ViTSize) -> int:
    return int(size.embed_dim * size.mlp_ratio)


def classifier_metrics(model: torch.nn.Module, task: ImageTask, cfg: Config) -> dict:
    """Test accuracy (%), ECE (15 bins), reliability bins, accuracy (%) under Gaussian-noise corruption."""
    logits = predict(model, task.x_test)
    g = generator(derive_seed("corruption", cfg.seed))
    noise = torch.randn(task.x_test_raw.shape, generator=g).to(task.x_test_raw.device) * cfg.corruption_sigma
    x_noisy = ((task.x_test_raw + noise).clamp(0, 1) - task.mean) / task.std
    noisy_logits = predict(model, x_noisy)
    bins = reliability_bins(logits, task.y_test)
    return {"test_acc": 100 * float((logits.argmax(-1) == task.y_test).float().mean()),
            "ece": expected_calibration_error(logits, task.y_test),
            "corrupted_acc": 100 * float((noisy_logits.argmax(-1) == task.y_test).float().mean()),
            "reliability": {k: v.tolist() for k, v in bins.items()}}


def run_key(name: str, cfg: Config) -> dict:
    """Cache key of run `name` (its directory under artifacts/<scale>/activation_sparsity/runs)."""
    return {"run": name, "cfg": asdict(cfg)}


def train_image_run(ctx: Context, task: ImageTask, name: str, build, x: torch.Tensor, y: torch.Tensor, steps: int,
                    classify: bool, progress: Progress | None = None) -> dict:
    """Train one image model (cached), tracking nnz% on a train probe (its own inputs) and the test probe."""
    cfg: Config = ctx.cfg
    key = run_key(name, cfg)

    def run(run_dir) -> dict:
        seed_everything(derive_seed(name, cfg.seed))
        model = prepare_model(build(), ctx.device)
        probes = {"train": x[: cfg.probe_examples], "test": task.x_test[: cfg.probe_examples]}
        marks = log_spaced_steps(steps, cfg.n_measurements,
                                 always=(math.ceil(len(x) / cfg.batch_size) - 1,))
        tracker = SparsityTracker(probes, marks)
        fit(model, (x, y), image_train_config(cfg, steps), seed=derive_seed(name, cfg.seed, "data"),
            callbacks=[tracker], checkpoint=run_dir / "checkpoint.pt", desc=name)
        rec = {"curve": tracker.records, "device": str(ctx.device), "steps_per_epoch": len(x) // cfg.batch_size,
               "total_steps": steps}
        if classify:
            rec.update(classifier_metrics(model, task, cfg))
        return rec

    return run_cached(ctx.artifacts_dir / "runs", key, run, progress, f"{name} ({steps} steps)")


def train_char_lm(ctx: Context, progress: Progress | None = None) -> dict:
    cfg: Config = ctx.cfg
    key = run_key("char_lm", cfg)

    def run(run_dir) -> dict:
        corpus = load_tinyshakespeare(ctx.data_root)
        train_tok, val_tok = corpus.split(0.9)
        x, y = (t.to(ctx.device) for t in char_windows(train_tok, cfg.lm_block_size))
        xv, _ = char_windows(val_tok, cfg.lm_block_size, cfg.lm_probe_windows)
        seed_everything(derive_seed("char_lm", cfg.seed))
        model = prepare_model(CharTransformer(len(corpus.vocab), cfg.lm_block_size, cfg.lm_d_model,
                                              cfg.lm_layers, cfg.lm_heads), ctx.device)
        probes = {"train": x[: cfg.lm_probe_windows], "test": xv.to(ctx.device)}
        tracker = SparsityTracker(probes, log_spaced_steps(cfg.lm_steps, cfg.n_measurements))
        tc = TrainConfig(epochs=10**6, steps=cfg.lm_steps, batch_size=cfg.lm_batch_size, lr=cfg.lm_lr,
                         optimizer="adamw", weight_decay=cfg.weight_decay, schedule=cfg.schedule,
                         warmup_steps=cfg.warmup_steps, grad_clip=1.0, drop_last=True)
        state = fit(model, (x, y), tc, seed=derive_seed("char_lm", cfg.seed, "data"), callbacks=[tracker],
                    checkpoint=run_dir / "checkpoint.pt", desc="char_lm")
        return {"curve": tracker.records, "final_train_loss": state.last_loss, "total_steps": cfg.lm_steps,
                "steps_per_epoch": len(x) // cfg.lm_batch_size}

    return run_cached(ctx.artifacts_dir / "runs", key, run, progress, f"char_lm ({cfg.lm_steps} steps)")


def run_plan(ctx: Context) -> dict:
    """name -> record of every run of this claim (trains what is not cached)."""
    cfg: Config = ctx.cfg
    task = image_task(ctx)
    n, small = len(task.y_train), cfg.vit_small
    k = max(1, round(d_ff(small) * cfg.topk_fraction))

    def vit_small(topk=None):
        return vit(**asdict(small), patch_size=cfg.patch_size, topk=topk)

    def vit_large():
        return vit(**asdict(cfg.vit_large), patch_size=cfg.patch_size)

    y_rand = random_labels(n, 10, derive_seed("random_labels", cfg.seed)).to(ctx.device)
    x_rand = gaussian_images(n, (1, 28, 28), derive_seed("random_inputs", cfg.seed)).to(ctx.device)
    xs, ys = task.x_train, task.y_train
    p = ctx.progress(len(run_names(cfg)))
    runs = {
        "vit_small": train_image_run(ctx, task, "vit_small", vit_small, xs, ys, cfg.steps, True, p),
        "vit_large": train_image_run(ctx, task, "vit_large", vit_large, xs, ys, cfg.steps, True, p),
        "vit_topk": train_image_run(ctx, task, "vit_topk", lambda: vit_small(k), xs, ys, cfg.steps, True, p),
        "random_labels": train_image_run(ctx, task, "random_labels", vit_small, xs, y_rand, cfg.variant_steps, False,
                                         p),
        "random_inputs": train_image_run(ctx, task, "random_inputs", vit_small, x_rand, y_rand, cfg.variant_steps,
                                         False, p),
        "char_lm": train_char_lm(ctx, p),
        "mixer": train_image_run(ctx, task, "mixer", lambda: mixer(cfg.mixer_dim, cfg.mixer_depth, cfg.patch_size),
                                 xs, ys, cfg.other_steps, True, p),
        "mlp": train_image_run(ctx, task, "mlp", lambda: TwoLayerMLP(28 * 28, cfg.mlp_hidden), xs, ys,
                               cfg.other_steps, True, p),
    }
    if cfg.label_noise > 0:
        y_noisy, _ = inject_label_noise(task.y_train.cpu(), cfg.label_noise, 10, derive_seed("label_noise", cfg.seed))
        y_noisy = y_noisy.to(ctx.device)
        runs["label_noise_base"] = train_image_run(ctx, task, "label_noise_base", vit_small, task.x_train, y_noisy,
                                                   cfg.variant_steps, True, p)
        runs["label_noise_topk"] = train_image_run(ctx, task, "label_noise_topk", lambda: vit_small(k), task.x_train,
                                                   y_noisy, cfg.variant_steps, True, p)
    return runs


def train(ctx: Context) -> None:
    run_plan(ctx)


# ----------------------------------------------------------------------------- analysis (never trains)

IMAGE_RUNS = ("vit_small", "vit_large", "vit_topk", "random_labels", "random_inputs", "mixer", "mlp")
LABELS = {"vit_small": "ViT small", "vit_large": "ViT large", "vit_topk": "ViT small, Top-k",
          "random_labels": "ViT small, random labels", "random_inputs": "ViT small, Gaussian inputs + random labels",
          "char_lm": "char LM (Tiny Shakespeare)", "mixer": "MLP-Mixer", "mlp": "2-layer MLP",
          "label_noise_base": "ViT small, 40% label noise", "label_noise_topk": "ViT small, Top-k, 40% label noise"}


def run_names(cfg: Config) -> list[str]:
    names = [*IMAGE_RUNS, "char_lm"]
    return names + (["label_noise_base", "label_noise_topk"] if cfg.label_noise > 0 else [])


def load_runs(ctx: Context) -> dict[str, dict]:
    """name -> cached record; a missing run is a CacheError telling the user to run the train stage."""

    from claimbench.errors import CacheError
    from claimbench.sweep import DONE, load_record, run_dir

    out = {}
    for name in run_names(ctx.cfg):
        done = run_dir(ctx.artifacts_dir / "runs", run_key(name, ctx.cfg)) / DONE
        if not done.exists():
            raise CacheError(f"{CLAIM_ID}: run {name!r} has no result at scale {ctx.scale} ({done} missing); run "
                             f"`python stages/{CLAIM_ID}.py train --scale {ctx.scale}` (or `dvc repro`) first.")
        out[name] = load_record(done.parent)
    return out


def curve_frame(runs: dict[str, dict]) -> pd.DataFrame:
    """Long table: run, step, probe ('train'|'test'), layer index, layer name, nnz_percent, dead_fraction."""
    rows = []
    for name, rec in runs.items():
        for point in rec["curve"]:
            for probe in ("train", "test"):
                summary = point[probe]
                for i, (layer, nnz) in enumerate(summary["layers"].items()):
                    rows.append({"run": name, "step": point["step"], "probe": probe, "layer": i,
                                 "layer_name": layer, "nnz_percent": nnz})
                rows.append({"run": name, "step": point["step"], "probe": probe, "layer": -1,
                             "layer_name": "mean", "nnz_percent": summary["mean"],
                             "dead_fraction": summary["dead_fraction"]})
    return pd.DataFrame(rows)


def mlp_layers(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of per-token MLP activations only (drops the Mixer's token-mixing MLPs, which act per channel)."""
    return df[(df.layer >= 0) & ~df.layer_name.str.contains("mlp_tokens")]


def endpoints(df: pd.DataFrame, run: str, probe: str) -> tuple[pd.Series, pd.Series]:
    """(init, end) nnz% per layer (index: layer name, in depth order) of `run` on `probe`."""
    d = mlp_layers(df)
    d = d[(d.run == run) & (d.probe == probe)]
    init = d[d.step == d.step.min()].set_index("layer_name").nnz_percent
    end = d[d.step == d.step.max()].set_index("layer_name").nnz_percent
    return init, end.reindex(init.index)


def run_statistics(df: pd.DataFrame, run: str) -> dict[str, float]:
    """init/end layer-mean nnz% on train/test, end/init ratios, |train−test| gap (points), worst layer ratio."""
    out = {}
    for probe in ("train", "test"):
        init, end = endpoints(df, run, probe)
        out[f"init_nnz_{probe}"] = float(init.mean())
        out[f"end_nnz_{probe}"] = float(end.mean())
        out[f"end_over_init_{probe}"] = float(end.mean() / init.mean())
    init, end = endpoints(df, run, "test")
    ratios = end / init
    out["worst_layer_end_over_init"] = float(ratios.iloc[1:].max()) if len(ratios) > 1 else float(ratios.iloc[0])
    out["train_test_gap"] = abs(out["end_nnz_train"] - out["end_nnz_test"])
    return out


def step_fraction_nnz(df: pd.DataFrame, run: str, step: int, probe: str = "test") -> float:
    """Layer-mean nnz% of `run` at the last measurement at or before `step`."""
    d = mlp_layers(df)
    d = d[(d.run == run) & (d.probe == probe) & (d.step <= step)]
    return float(d[d.step == d.step.max()].nnz_percent.mean())


def statistics(df: pd.DataFrame, runs: dict[str, dict]) -> dict[str, float]:
    stats: dict[str, float] = {}
    for run, prefix in (("vit_small", "vit"), ("char_lm", "lm"), ("vit_large", "vit_large"),
                        ("random_labels", "rand_labels"), ("random_inputs", "rand_inputs"), ("vit_topk", "topk"),
                        ("mixer", "mixer"), ("mlp", "mlp")):
        stats.update({f"{prefix}_{k}": v for k, v in run_statistics(df, run).items()})
    stats["vit_scaling_rel_reduction"] = 1 - stats["vit_large_end_nnz_test"] / stats["vit_end_nnz_test"]
    first_epoch = runs["vit_small"]["steps_per_epoch"]
    stats["vit_first_epoch_step"] = min(first_epoch, runs["vit_small"]["total_steps"])
    stats["vit_first_epoch_over_init_test"] = (step_fraction_nnz(df, "vit_small", first_epoch)
                                               / stats["vit_init_nnz_test"])
    d = df[(df.run == "vit_small") & (df.probe == "test") & (df.layer == -1)]
    stats["vit_dead_fraction_test"] = float(d[d.step == d.step.max()].dead_fraction.iloc[0])
    base, topk = runs["vit_small"], runs["vit_topk"]
    stats.update({"base_test_acc": base["test_acc"], "topk_test_acc": topk["test_acc"],
                  "topk_acc_minus_base": topk["test_acc"] - base["test_acc"],
                  "base_ece": base["ece"], "topk_ece": topk["ece"], "topk_ece_minus_base": topk["ece"] - base["ece"],
                  "base_corrupted_acc": base["corrupted_acc"], "topk_corrupted_acc": topk["corrupted_acc"]})
    if "label_noise_base" in runs:
        stats["label_noise_base_acc"] = runs["label_noise_base"]["test_acc"]
        stats["label_noise_topk_acc"] = runs["label_noise_topk"]["test_acc"]
    return stats


def summary_table(df: pd.DataFrame, runs: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for name, rec in runs.items():
        s = run_statistics(df, name)
        rows.append({"run": LABELS[name], "steps": rec["total_steps"],
                     "init nnz% train": s["init_nnz_train"], "init nnz% test": s["init_nnz_test"],
                     "end nnz% train": s["end_nnz_train"], "end nnz% test": s["end_nnz_test"],
                     "end/init test": s["end_over_init_test"],
                     "worst layer end/init (excl. first)": s["worst_layer_end_over_init"],
                     "test acc %": rec.get("test_acc", float("nan"))})
    return pd.DataFrame(rows)


def layer_table(df: pd.DataFrame, run: str) -> pd.DataFrame:
    init, end = endpoints(df, run, "test")
    return pd.DataFrame({"run": run, "layer": init.index, "init nnz% test": init.values,
                         "end nnz% test": end.values, "end/init": (end / init).values})


def topk_table(runs: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for name in ("vit_small", "vit_topk", "label_noise_base", "label_noise_topk"):
        if name in runs:
            r = runs[name]
            rows.append({"run": LABELS[name], "test acc %": r["test_acc"], "ECE (15 bins)": r["ece"],
                         "acc % under Gaussian noise": r["corrupted_acc"]})
    return pd.DataFrame(rows)


def plot_curves(df: pd.DataFrame, path) -> None:
    """nnz% vs training step per layer (log y), one panel per model; test probe solid, train dashed."""
    from claimbench import plotting

    panels = ["vit_small", "vit_large", "char_lm", "mixer", "mlp"]
    fig, axes = plotting.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), sharey=True)
    d = mlp_layers(df)
    for ax, run in zip(axes, panels):
        for probe, style in (("test", "-"), ("train", "--")):
            for layer, g in d[(d.run == run) & (d.probe == probe)].groupby("layer"):
                ax.plot(g.step + 1, g.nnz_percent, style, color=f"C{layer % 10}",
                        label=f"layer {layer}" if probe == "test" else None)
        ax.set(xscale="log", yscale="log", title=LABELS[run], xlabel="training step + 1")
        ax.legend(fontsize=6)
    axes[0].set_ylabel("nonzero % (solid test, dashed train)")
    plotting.save(fig, path)


def plot_bars(stats: dict[str, float], path) -> None:
    from claimbench import plotting

    names = ["normal", "random labels", "random inputs"]
    init = [stats["vit_init_nnz_train"], stats["rand_labels_init_nnz_train"], stats["rand_inputs_init_nnz_train"]]
    end = [stats["vit_end_nnz_train"], stats["rand_labels_end_nnz_train"], stats["rand_inputs_end_nnz_train"]]
    fig, ax = plotting.subplots(figsize=(5, 3.4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], init, 0.4, label="init")
    ax.bar([x + 0.2 for x in xs], end, 0.4, label="end")
    ax.set(xticks=list(xs), xticklabels=names, ylabel="layer-mean nonzero % (own train data)",
           title="ViT small: sparsity vs data")
    ax.legend()
    plotting.save(fig, path)


def plot_reliability(runs: dict[str, dict], path) -> None:
    from claimbench import plotting

    fig, ax = plotting.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    for name in ("vit_small", "vit_topk"):
        rel = runs[name]["reliability"]
        pts = [(c, a) for c, a, n in zip(rel["confidence"], rel["accuracy"], rel["count"]) if n > 0]
        ax.plot(*zip(*pts), "o-", label=f"{LABELS[name]} (ECE {runs[name]['ece']:.3f})")
    ax.set(xlabel="confidence (15 bins)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="Top-k reliability")
    ax.legend(fontsize=7)
    plotting.save(fig, path)


def analyse(ctx: Context) -> ClaimResult:
    cfg: Config = ctx.cfg
    runs = load_runs(ctx)
    df = curve_frame(runs)
    stats = statistics(df, runs)
    plot_curves(df, ctx.figures_dir / "nnz_vs_step.png")
    plot_bars(stats, ctx.figures_dir / "random_labels_inputs.png")
    plot_reliability(runs, ctx.figures_dir / "topk_reliability.png")
    curves = df[df.layer == -1][["run", "step", "probe", "nnz_percent"]]
    tables = {"summary": summary_table(df, runs), "topk": topk_table(runs),
              "layers": pd.concat([layer_table(df, "vit_small"), layer_table(df, "vit_large"),
                                   layer_table(df, "char_lm")]),
              "curves": curves}
    small, large = cfg.vit_small, cfg.vit_large
    setup = {"dataset": "Fashion-MNIST (ViT, Mixer, MLP); Tiny Shakespeare (char LM)",
             "model": (f"timm ViT ReLU patch {cfg.patch_size}: small {small.embed_dim}d×{small.depth}, "
                       f"large {large.embed_dim}d×{large.depth}; char LM {cfg.lm_d_model}d×{cfg.lm_layers}"),
             "steps": {"vit": cfg.steps, "variants": cfg.variant_steps, "lm": cfg.lm_steps, "other": cfg.other_steps},
             "topk_k": max(1, round(d_ff(small) * cfg.topk_fraction)), "d_ff_small": d_ff(small),
             "d_ff_large": d_ff(large)}
    return ClaimResult(statistics=stats, tables=tables, seeds=[cfg.seed], setup=setup,
                       details={"measured_steps": sorted(df[df.run == "vit_small"].step.unique().tolist())})
