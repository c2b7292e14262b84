"""Analyse side of activation sparsity: nnz% curves of the finished runs → statistics and tables."""

from __future__ import annotations

import pandas as pd

from claimbench.claims.activation_sparsity import Config, d_ff, topk_k
from claimbench.contract import Context
from claimbench.results import ClaimResult
from claimbench.sweep import Record

LABELS = {"vit_small": "ViT small", "vit_large": "ViT large", "vit_topk": "ViT small, Top-k",
          "random_labels": "ViT small, random labels", "random_inputs": "ViT small, Gaussian inputs + random labels",
          "char_lm": "char LM (Tiny Shakespeare)", "mixer": "MLP-Mixer", "mlp": "2-layer MLP",
          "label_noise_base": "ViT small, 40% label noise", "label_noise_topk": "ViT small, Top-k, 40% label noise"}


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


def analyse(records: list[Record], ctx: Context) -> ClaimResult:
    """Statistics and tables from the runs' records (run name = rec.key["run"], in plan order).
    figure_data: layer_curves (mlp_layers of the long curve table), reliability {run: {reliability, ece}}."""
    cfg: Config = ctx.cfg
    runs = {rec.key["run"]: rec.record for rec in records}
    df = curve_frame(runs)
    stats = statistics(df, runs)
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
             "topk_k": topk_k(cfg), "d_ff_small": d_ff(small), "d_ff_large": d_ff(large)}
    reliability = {name: {"reliability": runs[name]["reliability"], "ece": runs[name]["ece"]}
                   for name in ("vit_small", "vit_topk")}
    return ClaimResult(statistics=stats, tables=tables, seeds=[cfg.seed], setup=setup,
                       details={"measured_steps": sorted(df[df.run == "vit_small"].step.unique().tolist())},
                       figure_data={"layer_curves": mlp_layers(df), "reliability": reliability})
