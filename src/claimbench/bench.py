"""CPU training-speed benchmark of every claim's model, against this CPU's matmul ceiling (a tool, not a test).

    python -m claimbench bench [--scale quick] [--seconds 3] [--models heavy_tail,el2n] [--threads N]
                               [--workers W] [--knobs] [--json PATH]

Per model, at the claim's settings of that scale (params.yaml, read through the claim registry), on the CPU:

- **steps/s**: optimiser steps per second of `claimbench.train.fit`, the loop every claim trains with
  (batch slicing, augmentation, lr schedule, forward, loss, backward, grad clip, optimiser step), on random
  data of the claim's shapes and training-set size (capped at `POOL_CAP` examples), with the claim's model,
  optimiser, loss and batch size. After a warm-up, the steps per call are calibrated so that `REPEATS` timed
  calls (time.perf_counter) take about --seconds in all; the median rate is reported. ms/step = 1000 / steps/s.
- **GFLOP/step**: floating-point operations of one training step (forward + backward; a multiply-add is 2),
  counted by torch.utils.flop_counter.FlopCounterMode (matmuls, convolutions, attention); the optimiser's
  and element-wise ops are not counted, so the figure is a lower bound. '–' where it cannot be counted.
- **GFLOP/s** = GFLOP/step × steps/s; **% ceil** = GFLOP/s over the ceiling at the row's thread count.
- **ceiling**: GFLOP/s of an `MATMUL_N`² @ `MATMUL_N`² matmul in the scale's dtype (float32; float64 at ci),
  2·n³ / time, median over repeats, measured at every thread count a row uses.

Workers (--workers W > 1): each model is timed in W spawned processes at once, as the local executor's W
workers train W runs side by side; steps/s is their sum (throughput) and % ceil is against the ceiling at
W × threads threads. Compare `--threads 2` (one run on both cores) with `--workers 2 --threads 1`.

Engine knobs (--knobs): each model is also timed with each knob of the training engine switched on
(claimbench.engine: `fused` optimiser, `channels_last`, both), each on its own copy of the model, interleaved
with the engine off in one run (round after round of one timed call per mode), so that a load that changes
during the run moves every mode alike; '× off' is a mode's median steps/s over the engine-off median.

Threads: each row runs with the torch threads its claim's plan asks for (RunSpec.threads, else torch's
default), or --threads N. The header gives torch's version, CPU model, kernel path (ATEN_CPU_CAPABILITY), dtype.
Nothing is downloaded, no data files are read. A bad argument: one line on stderr, exit status 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from claimbench.claims import claim_ids, load_params, registry
from claimbench.contract import Context, RunSpec
from claimbench.errors import ClaimbenchError, OneLineArgumentParser
from claimbench.numerics import machine_facts, use_scale_dtype
from claimbench.params import EngineSettings
from claimbench.train import TrainConfig, cpu_threads, cross_entropy, fit

KNOBS = {"off": EngineSettings(), "fused": EngineSettings(fused_optimizer=True),
         "channels_last": EngineSettings(channels_last=True),
         "fused+channels_last": EngineSettings(fused_optimizer=True, channels_last=True)}

REPEATS = 3          # timed calls per model; the median rate is reported
POOL_CAP = 16384     # at most this many random training examples are held per model
MATMUL_N = 2048      # side of the square matmul that measures the FLOP ceiling
IMAGES = {"fashion-mnist": (1, 28), "cifar10": (3, 32)}  # dataset -> (channels, image side)
CHAR_VOCAB = 65      # distinct characters of Tiny Shakespeare (the char LM's vocabulary)
CPU = torch.device("cpu")


@dataclass
class Case:
    """One model to time: `fit(model, data, tc with steps=k, loss_fn=loss)`; data = random (x, y) tensors."""

    name: str
    model: nn.Module
    data: tuple[torch.Tensor, torch.Tensor]
    tc: TrainConfig
    loss: Callable = cross_entropy


def images(n: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """min(n, POOL_CAP) random standardised images of `shape` and random labels of 10 classes."""
    g, n = torch.Generator().manual_seed(0), min(n, POOL_CAP)
    return torch.randn((n, *shape), generator=g), torch.randint(0, 10, (n,), generator=g)


# ---------------------------------------------------------------- one function per claim: its Cases


def heavy_tail_phases(cfg) -> list[Case]:
    """The scale's model (params `model`: MiniAlexNet, or the MLP3 surrogate of card v5/v6 at quick, long and gpu;
    built by the claim's own `build_model`), MSE on softmax, SGD momentum, lr × gamma per epoch: the smallest and
    largest batch size."""
    from claimbench.claims.heavy_tail_phases.train import build_model
    from claimbench.models.mini_alexnet import mse_on_softmax

    c = IMAGES[cfg.dataset][0]  # 28 px: CIFAR-10 is centre-cropped to 28
    n = 10 * cfg.train_per_class if cfg.train_per_class else {"fashion-mnist": 60000, "cifar10": 50000}[cfg.dataset]
    name = {"mini_alexnet": "MiniAlexNet", "mlp3": "MLP3"}[cfg.model]
    return [Case(f"{name} bs={bs}", build_model(cfg.model, data[0]), data,
                 TrainConfig(epochs=cfg.epochs, batch_size=bs, lr=cfg.lr, momentum=cfg.momentum, schedule="exp",
                             gamma=cfg.lr_decay), mse_on_softmax)
            for bs in sorted({min(cfg.batch_sizes), max(cfg.batch_sizes)}) for data in [images(n, (c, 28, 28))]]


def simpson_paradox(cfg) -> list[Case]:
    """The deepest VGG of the grid (most blocks and dense layers, widest, dropout and wd at their largest) at
    the grid's smallest batch size (the one that takes the most steps), on the downsampled images."""
    from claimbench.models.pgdl_vgg import PGDLVGG, VGGSpec

    c, side = IMAGES[cfg.dataset][0], IMAGES[cfg.dataset][1] // cfg.downsample
    spec = VGGSpec(max(cfg.blocks), max(cfg.dense_layers), max(cfg.last_filters), cfg.dense_width, max(cfg.dropout))
    tc = TrainConfig(epochs=cfg.epochs, batch_size=min(cfg.batch_size), lr=cfg.lr, momentum=cfg.momentum,
                     weight_decay=max(cfg.weight_decay), schedule="step" if cfg.lr_milestones else "constant",
                     milestones=tuple(cfg.lr_milestones), gamma=cfg.lr_gamma)
    name = f"PGDL VGG {spec.conv_layers}conv+{spec.dense_layers}fc f={spec.last_filters} bs={tc.batch_size}"
    return [Case(name, PGDLVGG(spec, c, side, 10), images(cfg.train_examples, (c, side, side)), tc)]


def activation_sparsity(cfg) -> list[Case]:
    """The small ViT (AdamW, the image recipe) and the char LM (AdamW, grad clip 1) at their batch sizes."""
    from claimbench.claims.activation_sparsity.train import image_train_config
    from claimbench.claims.activation_sparsity.variants import build_model
    from claimbench.models.relu_transformers import CharTransformer

    s, t = cfg.vit_small, cfg.lm_block_size
    vit = Case(f"ViT-small d={s.embed_dim} L={s.depth} p={cfg.patch_size} bs={cfg.batch_size}",
               build_model(cfg, "vit_small", False), images(cfg.train_examples, (1, 28, 28)),
               image_train_config(cfg, cfg.steps))
    windows = min(1_000_000 // t, POOL_CAP)  # ~90% of Tiny Shakespeare's 1.1 M characters
    tokens = torch.randint(0, CHAR_VOCAB, (windows, t + 1), generator=torch.Generator().manual_seed(0))
    lm_tc = TrainConfig(epochs=10**6, steps=cfg.lm_steps, batch_size=cfg.lm_batch_size, lr=cfg.lm_lr,
                        optimizer="adamw", weight_decay=cfg.weight_decay, schedule=cfg.schedule,
                        warmup_steps=cfg.warmup_steps, grad_clip=1.0, drop_last=True)
    lm = Case(f"char LM d={cfg.lm_d_model} L={cfg.lm_layers} T={t} bs={cfg.lm_batch_size}",
              CharTransformer(CHAR_VOCAB, t, cfg.lm_d_model, cfg.lm_layers, cfg.lm_heads),
              (tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()), lm_tc)
    return [vit, lm]


def neural_collapse(cfg) -> list[Case]:
    """Width-scaled ResNet-18 at the largest width, CE, SGD momentum with wd, step lr, grad clip."""
    from claimbench.claims.neural_collapse.train import NUM_CLASSES, loss_fn
    from claimbench.models.resnet_width import WideResNet18

    w = max(cfg.widths)
    tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                     weight_decay=cfg.weight_decay, schedule="step", gamma=0.1, milestones=(3 / 7, 5 / 7),
                     grad_clip=cfg.grad_clip, augment=cfg.augment)
    return [Case(f"ResNet-18 w={w:g} stem/{cfg.stem_stride} bs={cfg.batch_size}",
                 WideResNet18(w, NUM_CLASSES, 1, cfg.stem_stride), images(10 * cfg.train_per_class, (1, 28, 28)),
                 tc, loss_fn(cfg, "ce"))]


def el2n_pruning(cfg) -> list[Case]:
    """The claim's network (FastCNN at quick) on its full-data recipe (SGD Nesterov, step lr, drop-last)."""
    from claimbench.models.data_diet_nets import build_model

    c, side = IMAGES[cfg.dataset]
    return [Case(f"{cfg.model} w={cfg.width} bs={cfg.batch_size}", build_model(cfg.model, c, 10, cfg.width, side),
                 images(cfg.train_size, (c, side, side)), cfg.train_config())]


CASES = {f.__name__: f for f in (heavy_tail_phases, simpson_paradox, activation_sparsity, neural_collapse,
                                 el2n_pruning)}


def case_builder(claim: str) -> Callable | None:
    """The claim's Cases from its Config: the builder above, else its train side's optional
    `bench_cases(cfg) -> [(name, model, (x, y), TrainConfig[, loss]), …]`; None if it has neither."""
    if claim in CASES:
        return CASES[claim]
    own = getattr(registry()[claim].train, "bench_cases", None)
    return None if own is None else (lambda cfg: [Case(*c) for c in own(cfg)])


# ---------------------------------------------------------------- measuring


def run_steps(case: Case, k: int, engine: EngineSettings | None = None) -> None:
    """k optimiser steps of the claim's training loop (progress bar off, as in a pipeline run); engine: the
    training engine's knobs (None: off)."""
    tc = dataclasses.replace(case.tc, steps=k, checkpoint_every=10**9)
    with contextlib.redirect_stderr(io.StringIO()):
        fit(case.model, case.data, tc, seed=0, loss_fn=case.loss, desc="bench", engine=engine or KNOBS["off"])


def timed(fn: Callable, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def steps_per_second(case: Case, seconds: float) -> float:
    """Median steps/s over REPEATS timed calls of ~seconds/REPEATS each, after a warm-up and calibration."""
    run_steps(case, 2)  # warm-up: allocator, oneDNN primitives, optimiser state
    k, t = 1, timed(run_steps, case, 1)
    while t < seconds / (4 * REPEATS) and k < 2**20:
        k *= 2
        t = timed(run_steps, case, k)
    k = max(1, round(k * seconds / REPEATS / t))
    return statistics.median(k / timed(run_steps, case, k) for _ in range(REPEATS))


def knob_rates(case: Case, seconds: float) -> dict[str, float]:
    """Median steps/s per engine mode (KNOBS), each on its own copy of the model, timed interleaved: after a
    warm-up of every mode and a calibration on 'off', REPEATS rounds of one call of k steps per mode."""
    import copy

    cases = {m: dataclasses.replace(case, model=copy.deepcopy(case.model)) for m in KNOBS}
    for m, c in cases.items():
        run_steps(c, 2, KNOBS[m])
    k, t = 1, timed(run_steps, cases["off"], 1)
    while t < seconds / (4 * REPEATS * len(KNOBS)) and k < 2**20:
        k *= 2
        t = timed(run_steps, cases["off"], k)
    k = max(1, round(k * seconds / (REPEATS * len(KNOBS)) / t))
    rates: dict[str, list[float]] = {m: [] for m in KNOBS}
    for _ in range(REPEATS):
        for m, c in cases.items():
            rates[m].append(k / timed(run_steps, c, k, KNOBS[m]))
    return {m: statistics.median(r) for m, r in rates.items()}


def flops_per_step(case: Case) -> float | None:
    """FLOPs of one training step (forward + backward) counted by FlopCounterMode; None if unavailable. The
    CPU's fused attention kernels get torch's own SDPA formulas (causal attention counted as full)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

        aten = torch.ops.aten  # formulas get shapes: (query, key, value, …) and (grad_out, query, key, value, …)
        cpu_attention = {
            aten._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *_, **__: sdpa_flop_count(q, k, v),
            aten._scaled_dot_product_flash_attention_for_cpu_backward:
                lambda g, q, k, v, *_, **__: sdpa_backward_flop_count(g, q, k, v)}
        with FlopCounterMode(display=False, custom_mapping=cpu_attention) as counter:
            run_steps(case, 1)
        return float(counter.get_total_flops()) or None
    except Exception:  # noqa: BLE001 - an op the counter cannot handle: report '–', not fail
        return None


def matmul_ceiling(seconds: float) -> float:
    """GFLOP/s of an MATMUL_N² matmul in the default dtype (median over ≥ 3 after a warm-up)."""
    a, b = torch.randn(2, MATMUL_N, MATMUL_N, generator=torch.Generator().manual_seed(0))
    a @ b  # warm-up
    times: list[float] = []
    while len(times) < 3 or (sum(times) < seconds and len(times) < 50):
        times.append(timed(torch.matmul, a, b))
    return 2 * MATMUL_N**3 / statistics.median(times) / 1e9


def plan_threads(entry, ctx: Context) -> int | None:
    """The torch threads the claim's plan asks for (its first run's RunSpec.threads; None = torch's default)."""
    return next((s.threads for s in entry.train.plan(ctx) if isinstance(s, RunSpec)), None)


def select(names: str | None) -> list[str]:
    """Claim ids named in --models (exact, or a prefix of exactly one id); all registered claims, in
    claim order (claimbench.claims.registry), if None."""
    chosen, known = [], claim_ids()
    for name in filter(None, (n.strip() for n in (names or ",".join(known)).split(","))):
        hits = [c for c in known if c == name] or [c for c in known if c.startswith(name)]
        if len(hits) != 1:
            raise ClaimbenchError(f"bench: --models {name!r} names {'no' if not hits else 'more than one'} claim; "
                                  f"choose among {', '.join(known)}.")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def row(claim: str, case: Case, threads: int | str, rate: float, ceiling: float) -> dict:
    """One table row: case's shapes, `rate` (steps/s), FLOPs per step, GFLOP/s and its share of `ceiling`."""
    flops = flops_per_step(case)
    gflops = None if flops is None else flops * rate / 1e9
    return {"model": case.name, "claim": claim, "batch": case.tc.batch_size, "input": list(case.data[0].shape[1:]),
            "params_M": sum(q.numel() for q in case.model.parameters()) / 1e6, "optimizer": case.tc.optimizer,
            "threads": threads, "steps_per_s": rate, "ms_per_step": 1000 / rate,
            "gflop_per_step": None if flops is None else flops / 1e9, "gflop_per_s": gflops,
            "pct_of_ceiling": None if gflops is None else 100 * gflops / ceiling}


def _worker_rate(claim: str, index: int, scale: str, params: str, threads: int, seconds: float) -> float:
    """In a spawned worker: steps/s of the claim's index-th model at `threads` threads."""
    p = load_params(params, scale)
    use_scale_dtype(p.scale)
    with cpu_threads(threads, CPU):
        return steps_per_second(case_builder(claim)(p.claims[claim])[index], seconds)


def workers_rate(claim: str, index: int, scale: str, params: str, threads: int, workers: int,
                 seconds: float) -> float:
    """Steps/s of the claim's index-th model summed over `workers` spawned processes timing it at once."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_worker_rate, claim, index, scale, params, threads, seconds) for _ in range(workers)]
        return sum(f.result() for f in futures)


def bench(scale: str | None, seconds: float, models: str | None, threads: int | None, params: str,
          workers: int = 1, knobs: bool = False) -> dict:
    """Time every chosen claim's models; return the header facts and one row per model (see `row`)."""
    p = load_params(params, scale)
    claims, entries, rows, ceilings, untimed = select(models), registry(), [], {}, []
    use_scale_dtype(p.scale)
    facts = machine_facts()  # torch threads here: torch's default
    default_threads = facts["torch_threads"]
    for claim in claims:
        build = case_builder(claim)
        if build is None:
            untimed.append(claim)
            continue
        ctx = Context(claim, p.scale, p.claims[claim], p, CPU, Path.cwd())
        n = threads or plan_threads(entries[claim], ctx) or default_threads
        total = n * workers
        with cpu_threads(total, CPU):
            if total not in ceilings:
                ceilings[total] = matmul_ceiling(min(seconds, 2.0))
        with cpu_threads(n, CPU):
            cases = build(p.claims[claim])
            for i, case in enumerate(cases):
                if knobs:
                    rates = knob_rates(case, seconds)
                    rows += [{**row(claim, case, n, r, ceilings[total]), "knob": m, "x_off": r / rates["off"]}
                             for m, r in rates.items()]
                    continue
                rate = (workers_rate(claim, i, p.scale, params, n, workers, seconds) if workers > 1
                        else steps_per_second(case, seconds))
                rows.append(row(claim, case, f"{workers}×{n}" if workers > 1 else n, rate, ceilings[total]))
    return {"scale": p.scale, "seconds": seconds, "workers": workers, "knobs": knobs, "torch": torch.__version__,
            **facts,
            "matmul_n": MATMUL_N,
            "ceiling_gflop_per_s": {str(k): v for k, v in sorted(ceilings.items())}, "rows": rows,
            "untimed": untimed}


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def table(res: dict) -> str:
    """The results as a markdown table under a header of machine facts."""
    ceil = ", ".join(f"{v:.1f} GFLOP/s at {k} thread{'s' * (k != '1')}" for k, v in res["ceiling_gflop_per_s"].items())
    lines = [f"claimbench.bench · scale {res['scale']} · ~{res['seconds']:g} s per model · median of {REPEATS}"
             + (f" · {res['workers']} worker processes at once (steps/s summed)" if res.get("workers", 1) > 1 else ""),
             f"torch {res['torch']} · CPU {res['cpu_model']} · kernels {res['cpu_kernels']} · "
             f"dtype {res['float_dtype']} · torch threads {res['torch_threads']} (default)",
             f"FLOP ceiling ({res['matmul_n']}² @ {res['matmul_n']}² matmul, {res['float_dtype']}): {ceil}", "",
             "| claim | model | input | params (M) | optim | threads | steps/s | ms/step | GFLOP/step | GFLOP/s "
             "| % ceil |" + (" engine | × off |" if res.get("knobs") else ""),
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|" + ("---|---:|" if res.get("knobs") else "")]
    for r in res["rows"]:
        shape = "×".join(map(str, [r["batch"], *r["input"]]))
        lines.append(f"| {r['claim']} | {r['model']} | {shape} | {r['params_M']:.3f} | {r['optimizer']} | "
                     f"{r['threads']} | {r['steps_per_s']:.1f} | {r['ms_per_step']:.2f} | "
                     f"{_fmt(r['gflop_per_step'], '.4f')} | {_fmt(r['gflop_per_s'], '.2f')} | "
                     f"{_fmt(r['pct_of_ceiling'], '.1f')} |"
                     + (f" {r['knob']} | {r['x_off']:.2f} |" if "knob" in r else ""))
    if res.get("untimed"):
        lines += ["", f"Not timed (no benchmark cases: give the claim's train.py a `bench_cases(cfg)`): "
                      f"{', '.join(res['untimed'])}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = OneLineArgumentParser(name="bench", prog="python -m claimbench bench", description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default=None, help="ci | quick | long | gpu | paper (default: params.yaml's)")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per model (default 3)")
    ap.add_argument("--models", default=None, help="comma-separated claim ids or unique prefixes (default: all, "
                                                   f"in order: {', '.join(claim_ids())})")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for every model (default: the claim's)")
    ap.add_argument("--workers", type=int, default=1, help="time each model in W processes at once (default 1)")
    ap.add_argument("--knobs", action="store_true",
                    help="also time each engine knob (fused, channels_last, both) interleaved with the engine off")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the numbers to this JSON file")
    ap.add_argument("--params", default="params.yaml", help="params file (default: ./params.yaml)")
    try:
        args = ap.parse_args(argv)
        if args.seconds <= 0 or (args.threads is not None and args.threads < 1) or args.workers < 1:
            raise ClaimbenchError("bench: --seconds must be > 0, --threads ≥ 1 and --workers ≥ 1.")
        if args.knobs and args.workers > 1:
            raise ClaimbenchError("bench: --knobs times one process; leave out --workers (or set it to 1).")
        res = bench(args.scale, args.seconds, args.models, args.threads, args.params, args.workers, args.knobs)
    except ClaimbenchError as e:
        print(str(e).splitlines()[0], file=sys.stderr)
        return 2
    print(table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
