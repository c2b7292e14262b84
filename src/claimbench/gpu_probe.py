"""GPU probe: per claim model, ms/step of `train.fit` under each engine mode, and the TFLOP/s it achieves.

    python -m claimbench.gpu_probe --out DIR [--scale gpu] [--device auto] [--steps 50] [--warmup 10]
                                   [--models heavy,el2n] [--max-seconds 270] [--stack-ks 1,4,16]

Models: every claim's models at the scale's settings, as `claimbench.bench` builds them (random data of the
claim's shapes, the claim's optimiser, loss and batch size). Modes, each timed on the same model in turn:

- **plain**: the engine off (the loop every scale ran before issue 23, less its per-step host copy);
- **engine**: the claim's params.yaml `engine:` settings at the scale, CUDA graphs off;
- **graphs**: those settings with cuda_graphs on (CUDA only: torch.compile mode='reduce-overhead'; the row
  records 'on' or why it fell back to eager); on a CPU the row is skipped with the reason;
- **stacked K=1,4,16**: K copies of the model trained as one stacked model (claimbench.stack.fit_stacked,
  engine off, eager); ms/step is per member step (the stacked step's time / K), so '× plain' is the
  throughput gain of stacking. Models that do not stack (transformers) are listed as skipped.

ms/step = (time of a fit of warmup+steps steps − time of a fit of warmup steps) / steps, each fit ended by a
device synchronisation, so set-up, compilation and capture are not counted. TFLOP/s = FLOPs of one step
(forward + backward, torch.utils.flop_counter.FlopCounterMode, as bench.py counts them) / (ms/step).
Once --max-seconds have passed, the remaining rows are skipped (so the probe fits a device lease).
Writes DIR/gpu_probe.json and DIR/gpu_probe.md. A bad argument: one line on stderr, exit status 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import sys
import time
from pathlib import Path

import torch

from claimbench import bench
from claimbench.claims import load_params
from claimbench.engine import ENGINE_VERSION, settings_for
from claimbench.errors import ClaimbenchError, OneLineArgumentParser
from claimbench.numerics import machine_facts, use_scale_dtype
from claimbench.params import EngineSettings
from claimbench.stack import fit_stacked, stackable
from claimbench.train import fit, resolve_device

STACK_KS = (1, 4, 16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def on_device(case: bench.Case, device: torch.device) -> bench.Case:
    """The case with its model and data on `device`."""
    return dataclasses.replace(case, model=case.model.to(device), data=tuple(t.to(device) for t in case.data))


def timed_fit(case: bench.Case, steps: int, engine: EngineSettings, device: torch.device) -> tuple[float, dict]:
    """(seconds, the fit's engine report) of `steps` optimiser steps of the claim's loop, synchronised."""
    tc = dataclasses.replace(case.tc, steps=steps, checkpoint_every=10**9)
    _sync(device)
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        state = fit(case.model, case.data, tc, seed=0, loss_fn=case.loss, desc="probe", engine=engine)
    _sync(device)
    return time.perf_counter() - t0, state.engine


def ms_per_step(case: bench.Case, engine: EngineSettings, device: torch.device, warmup: int, steps: int
                ) -> tuple[float, dict]:
    """Milliseconds per step beyond the first `warmup` (set-up, compile and capture excluded), and the report."""
    timed_fit(case, warmup, engine, device)  # first compile / capture / allocator warm-up
    t_short, _ = timed_fit(case, warmup, engine, device)
    t_long, report = timed_fit(case, warmup + steps, engine, device)
    return max(t_long - t_short, 1e-9) * 1000 / steps, report


def stacked_ms_per_member_step(case: bench.Case, k: int, device: torch.device, warmup: int, steps: int) -> float:
    """Milliseconds per member step of K copies of the case's model trained stacked (set-up excluded)."""
    import copy

    def run(n_steps: int) -> float:
        members = [copy.deepcopy(case.model) for _ in range(k)]
        tc = dataclasses.replace(case.tc, steps=n_steps, checkpoint_every=10**9)
        _sync(device)
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            fit_stacked(members, [case.data] * k, tc, seeds=list(range(k)), descs=[f"m{i}" for i in range(k)],
                        loss_fn=case.loss)
        _sync(device)
        return time.perf_counter() - t0

    run(warmup)
    t_short, t_long = run(warmup), run(warmup + steps)
    return max(t_long - t_short, 1e-9) * 1000 / steps / k


def probe(scale: str, device_name: str, steps: int, warmup: int, models: str | None, max_seconds: float,
          params: str = "params.yaml", stack_ks: tuple[int, ...] = STACK_KS) -> dict:
    """Time every chosen claim model in every mode; return header facts and rows (see module docstring)."""
    p = load_params(params, scale)
    use_scale_dtype(p.scale)
    device = resolve_device(device_name)
    start, rows = time.monotonic(), []
    for claim in bench.select(models):
        settings = dataclasses.replace(settings_for(p, claim), cuda_graphs=False)
        modes = {"plain": EngineSettings(), "engine": settings,
                 "graphs": dataclasses.replace(settings, cuda_graphs=True)}
        build = bench.case_builder(claim)
        for case in (build(p.claims[claim]) if build else []):
            case = on_device(case, device)
            flops = bench.flops_per_step(case)
            for mode, engine in modes.items():
                row = {"claim": claim, "model": case.name, "batch": case.tc.batch_size, "mode": mode,
                       "engine": dataclasses.asdict(engine), "gflop_per_step": None if flops is None else flops / 1e9}
                if mode == "graphs" and device.type != "cuda":
                    rows.append({**row, "skipped": "CUDA graphs need a CUDA device"})
                    continue
                if time.monotonic() - start > max_seconds:
                    rows.append({**row, "skipped": f"--max-seconds {max_seconds:g} passed"})
                    continue
                try:
                    ms, report = ms_per_step(case, engine, device, warmup, steps)
                except Exception as e:  # noqa: BLE001 - one mode failing must not lose the other rows
                    rows.append({**row, "skipped": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"})
                    continue
                tflops = None if flops is None else flops / (ms / 1000) / 1e12
                rows.append({**row, "ms_per_step": ms, "tflop_per_s": tflops, "used": report})
            for k in stack_ks:
                row = {"claim": claim, "model": case.name, "batch": case.tc.batch_size, "mode": f"stacked K={k}",
                       "gflop_per_step": None if flops is None else flops / 1e9}
                if not stackable(case.model):
                    rows.append({**row, "skipped": "the model has layers that do not stack (claimbench.stack)"})
                elif time.monotonic() - start > max_seconds:
                    rows.append({**row, "skipped": f"--max-seconds {max_seconds:g} passed"})
                else:
                    try:
                        ms = stacked_ms_per_member_step(case, k, device, warmup, steps)
                    except Exception as e:  # noqa: BLE001 - e.g. out of memory at K=16: keep the other rows
                        rows.append({**row, "skipped": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"})
                        continue
                    rows.append({**row, "ms_per_step": ms,
                                 "tflop_per_s": None if flops is None else flops / (ms / 1000) / 1e12})
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else machine_facts()["cpu_model"]
    return {"scale": p.scale, "device": str(device), "device_name": name, "torch": torch.__version__,
            "engine_version": ENGINE_VERSION, "steps": steps, "warmup": warmup,
            "wall_s": round(time.monotonic() - start, 1), "rows": rows}


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def table(res: dict) -> str:
    """The probe's rows as a markdown table, a row per (model, mode), with speed-up over 'plain'."""
    plain = {r["model"]: r.get("ms_per_step") for r in res["rows"] if r["mode"] == "plain"}
    lines = [f"claimbench.gpu_probe · scale {res['scale']} · {res['device']} ({res['device_name']}) · torch "
             f"{res['torch']} · engine v{res['engine_version']} · {res['steps']} timed steps after {res['warmup']} "
             f"· {res['wall_s']} s", "",
             "| claim | model | mode | ms/step | × plain | GFLOP/step | TFLOP/s | note |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in res["rows"]:
        ms, base = r.get("ms_per_step"), plain.get(r["model"])
        speed = None if ms is None or base is None else base / ms
        note = r.get("skipped") or (r.get("used") or {}).get("cuda_graphs", "")
        lines.append(f"| {r['claim']} | {r['model']} | {r['mode']} | {_fmt(ms, '.2f')} | {_fmt(speed, '.2f')} | "
                     f"{_fmt(r.get('gflop_per_step'), '.3f')} | {_fmt(r.get('tflop_per_s'), '.3f')} | {note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = OneLineArgumentParser(name="gpu_probe", prog="python -m claimbench.gpu_probe",
                               description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for gpu_probe.json and gpu_probe.md")
    ap.add_argument("--scale", default="gpu", help="ci | quick | long | gpu | paper (default gpu)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default auto")
    ap.add_argument("--steps", type=int, default=50, help="timed steps per mode (default 50)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    ap.add_argument("--models", default=None, help="comma-separated claim ids or unique prefixes (default: all)")
    ap.add_argument("--max-seconds", type=float, default=270.0, help="skip the rows left after this (default 270)")
    ap.add_argument("--stack-ks", default="1,4,16", help="members per stacked row (default 1,4,16)")
    ap.add_argument("--params", default="params.yaml", help="params file (default: ./params.yaml)")
    try:
        args = ap.parse_args(argv)
        try:
            ks = tuple(int(k) for k in args.stack_ks.split(","))
        except ValueError:
            ks = ()
        if args.steps < 1 or args.warmup < 1 or args.max_seconds <= 0 or not ks or min(ks) < 1:
            raise ClaimbenchError("gpu_probe: --steps and --warmup must be ≥ 1, --max-seconds > 0, --stack-ks a "
                                  "comma-separated list of whole numbers ≥ 1.")
        res = probe(args.scale, args.device, args.steps, args.warmup, args.models, args.max_seconds, args.params, ks)
    except ClaimbenchError as e:
        print(str(e).splitlines()[0], file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_probe.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "gpu_probe.md").write_text(table(res) + "\n")
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
