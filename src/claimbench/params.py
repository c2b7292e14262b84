"""params.yaml: load, select the scale, and validate every key against the claim's config dataclass.

Layout of params.yaml::

    scale: quick                 # ci | quick | long | gpu | paper
    data: {root: null, device: auto}
    executor: {kind: local}      # how runs execute (local | ray); never part of a cache key
    engine:                      # optional: how train.fit uses the hardware, per scale (EngineSettings)
      gpu: {all: {...}, <claim_id>: {...}}   # 'all' for every claim, a claim's keys override it
    <claim_id>:                  # one section per claim module in claimbench.claims
      ci: {...}                  # each scale holds the full config of that claim at that scale
      quick: {...}
      gpu: {...}
      paper: {...}

Any unknown key, missing key, wrong type or disallowed value raises ParamsError with one message
naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from claimbench.errors import ParamsError

SCALES = ("ci", "quick", "long", "gpu", "paper")
DEVICES = ("auto", "cpu", "cuda")


@dataclasses.dataclass(frozen=True)
class DataParams:
    """Where data come from. root: explicit Fashion-MNIST/Shakespeare/CIFAR folder (None = search)."""

    root: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclasses.dataclass(frozen=True)
class Params:
    scale: str
    data: DataParams
    claims: dict[str, Any]  # claim_id -> validated config dataclass instance at `scale`
    raw: dict[str, Any]
    executor: Any = None  # ExecutorParams
    engine: Any = None  # claim_id -> EngineSettings at `scale` (build_engine); None = all off


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _check_value(value: Any, tp: Any, where: str) -> Any:
    """Return value coerced to tp (int → float allowed; list → tuple) or raise ParamsError."""
    origin = typing.get_origin(tp)
    bad = ParamsError(f"params: {where} = {value!r} is not valid; expected {_type_name(tp)}.")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _check_value(value, arg, where)
            except ParamsError:
                continue
        raise bad
    if tp is type(None):
        if value is not None:
            raise bad
        return None
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        (inner, *_) = typing.get_args(tp) or (Any,)
        items = [_check_value(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if dataclasses.is_dataclass(tp):
        return build_config(tp, value, where)
    if tp is dict or typing.get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise bad
        return value
    raise TypeError(f"unsupported config type {tp!r} at {where}")


def build_config(cls: type, mapping: Any, where: str) -> Any:
    """Instantiate dataclass `cls` from `mapping`, rejecting unknown/missing keys and bad values.

    Fields with defaults may be omitted; a field's metadata may hold `check`, a predicate with a
    `check_doc` string describing what is allowed (e.g. "> 0").
    """
    if not isinstance(mapping, dict):
        raise ParamsError(f"params: {where} must be a mapping of settings, got {mapping!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ParamsError(
            f"params: unknown key {where}.{unknown[0]}; allowed keys at {where}: {', '.join(sorted(fields))}."
        )
    kwargs = {}
    for name, f in fields.items():
        key = f"{where}.{name}"
        if name not in mapping:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamsError(f"params: missing key {key} (expected {_type_name(hints[name])}).")
            continue
        value = _check_value(mapping[name], hints[name], key)
        if _is_seed_list(name, value) and len(set(value)) != len(value):
            dupes = sorted({v for v in value if value.count(v) > 1})
            raise ParamsError(f"params: {key} = {list(value)!r} repeats seed(s) {dupes}; replicates must use "
                              f"distinct seeds (a repeated seed is not an independent replicate).")
        check = f.metadata.get("check")
        if check is not None and not check(value):
            raise ParamsError(f"params: {key} = {value!r} is not allowed; must be {f.metadata['check_doc']}.")
        kwargs[name] = value
    return cls(**kwargs)


def _is_seed_list(name: str, value: Any) -> bool:
    """A list-valued setting named `seeds` or `*_seeds` lists replicate seeds (must be distinct)."""
    return (name == "seeds" or name.endswith("_seeds")) and isinstance(value, (list, tuple))


def positive(doc: str = "> 0"):
    """Field metadata: value (or every element of a list value) must be > 0."""

    def check(v):
        vals = v if isinstance(v, (list, tuple)) else [v]
        return all(x is None or x > 0 for x in vals)

    return {"check": check, "check_doc": doc}


def in_unit_interval(doc: str = "in [0, 1]"):
    def check(v):
        vals = v if isinstance(v, (list, tuple)) else [v]
        return all(0 <= x <= 1 for x in vals)

    return {"check": check, "check_doc": doc}


def _nonneg_int_or_fraction(v) -> bool:
    """GPUs per run: a fraction in (0, 1] packs runs on one GPU; above 1, a whole number."""
    return v == 0 or 0 < v <= 1 or float(v).is_integer()


@dataclasses.dataclass(frozen=True)
class ExecutorParams:
    """How a stage's runs execute. Never part of a run key or a stage's DVC params: it changes where
    and how fast runs train, not what they compute. The defaults below are the only ones: params.yaml
    and the code that runs a plan (`executor.execute`) state none of their own.

    kind: 'local' (this machine) or 'ray' (each run a Ray task).
    workers: local only; runs side by side in processes (1 = in the stage's process; default 2, measured
        faster on two cores: docs/measurements.md).
    threads_per_run: torch CPU threads per run (null: the claim's choice, else CPUs / workers, or
        cpus_per_run on Ray).
    address: ray only; null = a private local cluster, 'auto' = the running one (e.g. under Slurm).
    num_cpus: ray only; CPUs of the private local cluster (null: all).
    cpus_per_run, gpus_per_run: ray only; Ray resources per run (gpus_per_run 0.25 packs four on a GPU).
    max_retries: ray only; attempts after a worker or node dies (a run resumes from its checkpoint).
    storage: ray only; 'shared' = workers write run folders on a shared file system; 'copy' = they
        train in local scratch and return the finished folder to the driver.
    """

    kind: Literal["local", "ray"] = "local"
    workers: int = dataclasses.field(default=2, metadata=positive())
    threads_per_run: int | None = dataclasses.field(default=None, metadata=positive())
    address: str | None = None
    num_cpus: int | None = dataclasses.field(default=None, metadata=positive())
    cpus_per_run: float = dataclasses.field(default=1.0, metadata=positive())
    gpus_per_run: float = dataclasses.field(default=0.0, metadata={
        "check": _nonneg_int_or_fraction, "check_doc": "0, a fraction in (0, 1], or a whole number"})
    max_retries: int = dataclasses.field(default=2, metadata={"check": lambda v: v >= 0, "check_doc": ">= 0"})
    storage: Literal["shared", "copy"] = "shared"


class DuplicateKey(yaml.YAMLError):
    """A YAML mapping gives one key twice (YAML forbids it; PyYAML would keep the last silently)."""


def _duplicates(node: yaml.Node, where: str = "") -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark)
            path = f"{where}.{name}" if where else str(name)
            if name in seen and name != "<<":
                raise DuplicateKey(f"duplicate key {path} (lines {seen[name]} and {key.start_mark.line + 1}); "
                                   f"keep one")
            seen[name] = key.start_mark.line + 1
            _duplicates(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicates(item, f"{where}[{i}]")


def strict_yaml_load(text: str) -> Any:
    """yaml.safe_load that refuses a key given twice in one mapping (DuplicateKey, a yaml.YAMLError naming
    the key path, e.g. `toy.ci.epochs`, and both lines)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        _duplicates(node)
    return yaml.safe_load(text)


def yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text spans several lines)."""
    mark = getattr(e, "problem_mark", None)
    what = getattr(e, "problem", None) or (str(e).splitlines() or [type(e).__name__])[0]
    return f"{what} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else what


def _refuse_non_finite(node: Any, path: Path, where: str = "") -> None:
    """.inf and .nan are floats to YAML, but no setting here means them: refuse them with the key path."""
    if isinstance(node, dict):
        for k, v in node.items():
            _refuse_non_finite(v, path, f"{where}.{k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _refuse_non_finite(v, path, f"{where}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ParamsError(f"params: {where} = {node} in {path} is not a finite number; give a finite value.")


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """How `train.fit` uses the hardware for a claim's runs (claimbench.engine). All off = the loop as before
    issue 23, bit-identical on CPU. Never part of a run key (like the executor); each run records what it used.

    fused_optimizer: the optimiser's fused kernel where torch has one for the device (changes round-off).
    channels_last: 4-D models/inputs in channels_last; null = as before (on for CUDA, off for CPU).
    cuda_graphs: forward+backward captured as CUDA graphs (torch.compile reduce-overhead); CUDA only, falls
        back to eager where capture fails (the outcome is recorded).
    stack_runs: train up to this many runs that share an architecture and recipe as one stacked model
        (claimbench.stack; the claim must provide stack_key and run_group); 0 = off. Local executor only.
    """

    fused_optimizer: bool = False
    channels_last: bool | None = None
    cuda_graphs: bool = False
    stack_runs: int = dataclasses.field(default=0, metadata={"check": lambda v: v >= 0, "check_doc": ">= 0"})


def build_engine(raw: Any, claim_ids: list[str], chosen: str) -> dict[str, EngineSettings]:
    """params.yaml `engine:` → {claim_id: EngineSettings} at scale `chosen`. The block maps scales (a scale left
    out is all off) to {'all': settings, <claim_id>: settings overriding 'all' key by key}; every scale is
    validated."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ParamsError(f"params: engine must be a mapping of scales ({', '.join(SCALES)}), got {raw!r}.")
    unknown = sorted(set(raw) - set(SCALES))
    if unknown:
        raise ParamsError(f"params: unknown key engine.{unknown[0]}; allowed keys at engine: {', '.join(SCALES)}.")
    out: dict[str, EngineSettings] = {}
    for scale in SCALES:
        block = raw.get(scale) or {}
        if not isinstance(block, dict):
            raise ParamsError(f"params: engine.{scale} must be a mapping of 'all' and claim ids, got {block!r}.")
        allowed = ["all", *claim_ids]
        bad = sorted(set(block) - set(allowed))
        if bad:
            raise ParamsError(f"params: unknown key engine.{scale}.{bad[0]}; allowed keys at engine.{scale}: "
                              f"{', '.join(allowed)}.")
        common = block.get("all") or {}
        build_config(EngineSettings, common, f"engine.{scale}.all")
        for claim_id in claim_ids:
            own = block.get(claim_id) or {}
            if not isinstance(own, dict):
                raise ParamsError(f"params: engine.{scale}.{claim_id} must be a mapping of settings, got {own!r}.")
            settings = build_config(EngineSettings, {**common, **own}, f"engine.{scale}.{claim_id}")
            if scale == chosen:
                out[claim_id] = settings
    return out


def load_params(path: str | Path, scale: str | None, configs: dict[str, type]) -> Params:
    """Read params.yaml, pick `scale` (argument > env CLAIMBENCH_SCALE > file), validate all sections
    against `configs` (claim_id -> Config class; `claimbench.claims.load_params` passes the registry's).

    Every scale of every claim is validated, not just the selected one, so a typo in the `gpu`
    section is caught on a CPU run too. Env CLAIMBENCH_EXECUTOR=local|ray overrides executor.kind.
    """
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"params: {path} not found; run from the repository root (where dvc.yaml is).")
    try:
        raw = strict_yaml_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"params: {path} is not valid YAML: {yaml_problem(e)}.") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"params: {path} must hold a mapping at top level.")
    _refuse_non_finite(raw, path)
    allowed = {"scale", "data", "executor", "engine", *configs}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ParamsError(f"params: unknown top-level key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}.")
    chosen = scale or os.environ.get("CLAIMBENCH_SCALE") or raw.get("scale", "quick")
    if chosen not in SCALES:
        raise ParamsError(f"params: scale = {chosen!r} is not valid; allowed: {', '.join(SCALES)}.")
    data = build_config(DataParams, raw.get("data", {}) or {}, "data")
    executor = dict(raw.get("executor", {}) or {})
    if os.environ.get("CLAIMBENCH_EXECUTOR"):
        executor["kind"] = os.environ["CLAIMBENCH_EXECUTOR"]
    executor = build_config(ExecutorParams, executor, "executor")
    claims = {}
    for claim_id, config_cls in configs.items():
        section = raw.get(claim_id)
        if section is None:
            raise ParamsError(f"params: missing section {claim_id!r} (one block per scale: {', '.join(SCALES)}).")
        if not isinstance(section, dict) or set(section) != set(SCALES):
            got = sorted(section) if isinstance(section, dict) else section
            raise ParamsError(f"params: {claim_id} must have exactly the scales {', '.join(SCALES)}; got {got}.")
        for s in SCALES:
            cfg = build_config(config_cls, section[s], f"{claim_id}.{s}")
            if s == chosen:
                claims[claim_id] = cfg
    engine = build_engine(raw.get("engine"), list(configs), chosen)
    return Params(scale=chosen, data=data, claims=claims, raw=raw, executor=executor, engine=engine)


def config_dict(cfg: Any) -> dict:
    """A config dataclass as a plain JSON-able dict (for hashing and provenance)."""
    return dataclasses.asdict(cfg)
