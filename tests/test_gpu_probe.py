"""The GPU probe (claimbench.gpu_probe): its eager rows run on a CPU at tiny sizes; CUDA-only rows say why
they are skipped; bad arguments are one line, exit 2."""

import json
from pathlib import Path

import pytest

from claimbench import gpu_probe

PARAMS = str(Path(__file__).resolve().parents[1] / "params.yaml")


def test_probe_times_eager_modes_on_cpu_and_writes_json_and_markdown(tmp_path, capsys):
    rc = gpu_probe.main(["--out", str(tmp_path), "--scale", "ci", "--device", "cpu", "--steps", "2", "--warmup", "1",
                         "--models", "simpson", "--stack-ks", "1,2", "--params", PARAMS])
    assert rc == 0
    res = json.loads((tmp_path / "gpu_probe.json").read_text())
    assert res["device"] == "cpu" and res["scale"] == "ci" and res["engine_version"] == 2
    by_mode = {}
    for r in res["rows"]:
        by_mode.setdefault(r["mode"], []).append(r)
    models = {r["model"] for r in res["rows"]}
    assert len(models) == 1  # the grid's deepest VGG
    for mode in ("plain", "engine"):
        assert len(by_mode[mode]) == 1
        for r in by_mode[mode]:
            assert r["ms_per_step"] > 0 and r["gflop_per_step"] > 0
            assert r["tflop_per_s"] == pytest.approx(r["gflop_per_step"] / r["ms_per_step"])  # GFLOP/ms = TFLOP/s
            assert r["used"]["cuda_graphs"] == "off"
    assert all(r["skipped"] == "CUDA graphs need a CUDA device" for r in by_mode["graphs"])
    assert {m for m in by_mode if m.startswith("stacked")} == {"stacked K=1", "stacked K=2"}
    for k in (1, 2):  # the VGG stacks: per-member ms/step and TFLOP/s
        (r,) = by_mode[f"stacked K={k}"]
        assert r["ms_per_step"] > 0 and r["tflop_per_s"] == pytest.approx(r["gflop_per_step"] / r["ms_per_step"])
    md = (tmp_path / "gpu_probe.md").read_text()
    assert "| simpson_paradox | PGDL VGG 6conv+1fc f=8 bs=32 | plain |" in md and "× plain" in md
    assert md.strip() in capsys.readouterr().out


def test_rows_past_the_time_budget_are_skipped(tmp_path):
    res = gpu_probe.probe("ci", "cpu", 1, 1, "simpson", max_seconds=1e-9, params=PARAMS)
    timed = [r for r in res["rows"] if r["mode"] in ("plain", "engine")]
    assert timed and all(r["skipped"].startswith("--max-seconds") for r in timed)


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--device", "tpu"], ["--stack-ks", "4,x"], ["--stack-ks", "0"],
                                  ["--scale", "huge"], ["--models", "x"], []])
def test_bad_argument_exits_2_with_one_line(tmp_path, capsys, argv):
    out = [] if not argv else ["--out", str(tmp_path)]
    assert gpu_probe.main([*out, *argv, "--params", PARAMS]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
