"""How `train.fit` uses the hardware: the engine knobs of params.yaml `engine:`, resolved per run.

Knobs (`params.EngineSettings`; all off = the training loop as it was before issue 23, bit for bit on CPU):

- fused_optimizer: the optimiser's fused kernel (`fused=True`) where torch has one for the device and dtype,
  else the default (foreach) kernel, with the reason recorded.
- channels_last: 4-D models and inputs in channels_last memory format. None = as before (CUDA on, CPU off).
- cuda_graphs: forward + backward through `torch.compile(mode="reduce-overhead")` (CUDA graphs), CUDA only.
  The first PROBATION steps of each input shape (the first batches, a short last batch: where torch compiles,
  warms up and records the graph) run on a snapshot of the model, optimiser and RNG states: if compiling or
  capturing fails there, the states are restored and the run goes on eager.

Every `fit` reports what it actually used (`FitEngine.report()`: the knobs, the CUDA-graphs outcome, and
ENGINE_VERSION); the executor collects the reports of a run's fits (`use_engine`) into the run's attempts
record, from which the claim's provenance takes them (`executor.plan_compute`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from claimbench.params import EngineSettings

# 1: the loop before issue 23 (an index copy host→device every step); 2: indices, augmentation draws and
# loss sums on the device, one copy per epoch, and the knobs above.
ENGINE_VERSION = 2

OFF = EngineSettings()
PROBATION = 3  # steps per input shape that run on a snapshot (cudagraph trees record at the 2nd or 3rd call)
_ACTIVE: list[tuple[EngineSettings, list[dict]]] = []  # use_engine's stack: (settings, reports of its fits)


@contextlib.contextmanager
def use_engine(settings: EngineSettings | None) -> Iterator[list[dict]]:
    """Make `settings` the engine of every `fit` called inside (that is not given one); yields the list that
    collects those fits' reports (one dict each, in call order)."""
    reports: list[dict] = []
    _ACTIVE.append((settings or OFF, reports))
    try:
        yield reports
    finally:
        _ACTIVE.pop()


def current() -> EngineSettings:
    """The settings of the innermost `use_engine` (OFF outside any)."""
    return _ACTIVE[-1][0] if _ACTIVE else OFF


def report_fit(entry: dict) -> None:
    """Record what one fit used (its engine entry) with the innermost `use_engine`, if any."""
    if _ACTIVE:
        _ACTIVE[-1][1].append(entry)


def wants_channels_last(settings: EngineSettings, device: torch.device) -> bool:
    """The settings' channels_last choice on `device` (None: on for CUDA, off elsewhere, as before the knob)."""
    return bool(settings.channels_last if settings.channels_last is not None else device.type == "cuda")


def settings_for(params: Any, claim_id: str) -> EngineSettings:
    """The claim's engine settings at the params' scale (params.yaml `engine:`), OFF where none are set."""
    engines = getattr(params, "engine", None) or {}
    return engines.get(claim_id, OFF)


def describe(settings: EngineSettings) -> dict:
    """The settings as recorded in provenance: {'engine_version', 'fused_optimizer', 'channels_last', …}."""
    return {"engine_version": ENGINE_VERSION, **dataclasses.asdict(settings)}


def summarise(reports: list[dict]) -> dict | None:
    """One record for a run's fits: the first fit's report, with every distinct CUDA-graphs outcome."""
    if not reports:
        return None
    outcomes = sorted({r["cuda_graphs"] for r in reports})
    return {**reports[0], "cuda_graphs": outcomes[0] if len(outcomes) == 1 else outcomes, "fits": len(reports)}


# ---------------------------------------------------------------- per fit


def fused_supported(opt_name: str, device: torch.device, dtype: torch.dtype) -> str | None:
    """None if torch has a fused `opt_name` kernel for parameters of `dtype` on `device`, else why not."""
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[opt_name]
    try:
        p = nn.Parameter(torch.zeros(2, device=device, dtype=dtype))
        cls([p], lr=0.1, fused=True)
    except (RuntimeError, ValueError, TypeError) as e:
        return (str(e).splitlines() or [type(e).__name__])[0][:120]
    return None


def compile_reduce_overhead(model: nn.Module) -> Callable:
    """The model's forward (and backward) through CUDA graphs: torch.compile(mode='reduce-overhead')."""
    return torch.compile(model, mode="reduce-overhead")


class FitEngine:
    """What one `fit` uses: resolved knobs, and the forward (CUDA graphs or eager) with its fallback.

    model: the model being trained (on `device`); x: the training inputs (N, ...); opt_name: the optimiser.
    compiler: builds the graphed forward (default `compile_reduce_overhead`; tests inject a failing one).
    GRAPH_DEVICES: device types where cuda_graphs is tried (tests add 'cpu' to run the fallback on a CPU).
    """

    GRAPH_DEVICES: tuple[str, ...] = ("cuda",)

    def __init__(self, settings: EngineSettings, model: nn.Module, device: torch.device, x: torch.Tensor,
                 opt_name: str, compiler: Callable[[nn.Module], Callable] | None = None):
        self.settings, self.model, self.device = settings, model, device
        self.channels_last = wants_channels_last(settings, device) and x.dim() == 4
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())
        self.fused_note = fused_supported(opt_name, device, dtype) if settings.fused_optimizer else "off"
        self.fused = settings.fused_optimizer and self.fused_note is None
        self.forward: Callable = model
        self.graphs = "off"
        self._calls: dict[tuple, int] = {}  # graphed steps that succeeded, per input shape
        if settings.cuda_graphs and device.type not in self.GRAPH_DEVICES:
            self.graphs = "eager: cuda_graphs needs a CUDA device"
        elif settings.cuda_graphs:
            try:
                self.forward, self.graphs = (compiler or compile_reduce_overhead)(model), "on"
            except Exception as e:  # noqa: BLE001 - any compiler failure means: train eager
                self._fall_back(e)

    def prepare_model(self) -> None:
        """Put a 4-D model in channels_last if chosen (in place: the optimiser is made afterwards)."""
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def prepare_batch(self, xb: torch.Tensor) -> torch.Tensor:
        return xb.contiguous(memory_format=torch.channels_last) if self.channels_last else xb

    def _fall_back(self, e: BaseException) -> None:
        self.forward = self.model
        self.graphs = f"fallback to eager: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"

    def run_step(self, step: Callable[..., torch.Tensor], xb: torch.Tensor, yb: torch.Tensor,
                 opt: torch.optim.Optimizer) -> torch.Tensor:
        """Run `step(forward, xb, yb)` (forward, loss, backward, optimiser step; returns the loss). With CUDA graphs,
        the first PROBATION steps of an input shape run on a snapshot: if one fails, the snapshot is restored and
        the step (and every later one) runs eager."""
        if self.graphs != "on":
            return step(self.forward, xb, yb)
        key = (tuple(xb.shape), xb.dtype)
        if self._calls.get(key, 0) >= PROBATION:
            _mark_step()
            return step(self.forward, xb, yb)
        snap = _snapshot(self.model, opt, self.device)
        try:
            _mark_step()
            loss = step(self.forward, xb, yb)
        except Exception as e:  # noqa: BLE001 - compile or capture failed: restore, go on eager
            _restore(snap, self.model, opt, self.device)
            self._fall_back(e)
            return step(self.forward, xb, yb)
        self._calls[key] = self._calls.get(key, 0) + 1
        return loss

    def report(self) -> dict:
        """What this fit used: ENGINE_VERSION, the knobs as resolved, the CUDA-graphs outcome."""
        entry = {"engine_version": ENGINE_VERSION, "fused_optimizer": self.fused,
                 "channels_last": self.channels_last, "cuda_graphs": self.graphs}
        if self.settings.fused_optimizer and not self.fused:
            entry["fused_optimizer_note"] = self.fused_note
        return entry

    def close(self) -> dict:
        """Report this fit's choices to the enclosing `use_engine` and return them."""
        entry = self.report()
        report_fit(entry)
        return entry


def _mark_step() -> None:
    mark = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
    if mark is not None:
        mark()


def _snapshot(model: nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> dict:
    return {"model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "opt": copy.deepcopy(opt.state_dict()), "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _restore(snap: dict, model: nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> None:
    model.load_state_dict(snap["model"])
    opt.load_state_dict(snap["opt"])
    opt.zero_grad(set_to_none=True)
    torch.set_rng_state(snap["rng"])
    if snap["cuda_rng"] is not None:
        torch.cuda.set_rng_state(snap["cuda_rng"], device)
