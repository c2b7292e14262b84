"""The benchmark command (claimbench.bench): a table with steps/s and the matmul ceiling; bad arguments exit 2."""

import json
import re
from pathlib import Path

import pytest

from claimbench import bench

PARAMS = str(Path(__file__).resolve().parents[1] / "params.yaml")


@pytest.fixture(autouse=True)
def _small_matmul(monkeypatch):
    monkeypatch.setattr(bench, "MATMUL_N", 256)  # the ceiling's code path, in milliseconds


def test_bench_prints_steps_per_second_and_ceiling(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    rc = bench.main(["--scale", "ci", "--seconds", "0.05", "--models", "el2n_pruning", "--threads", "1",
                     "--params", PARAMS, "--json", str(out_json)])
    out = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"FLOP ceiling .*: \d+\.\d GFLOP/s at 1 thread", out)
    assert "steps/s" in out and "kernels" in out and "torch " in out
    row = next(line for line in out.splitlines() if line.startswith("| el2n_pruning"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "128×1×28×28" and cells[5] == "1"  # batch × one image; threads
    assert float(cells[6]) > 0  # steps/s
    res = json.loads(out_json.read_text())
    assert res["scale"] == "ci" and res["ceiling_gflop_per_s"]["1"] > 0
    (r,) = res["rows"]
    assert r["claim"] == "el2n_pruning" and r["steps_per_s"] > 0 and r["gflop_per_step"] > 0
    assert r["pct_of_ceiling"] == pytest.approx(100 * r["gflop_per_s"] / res["ceiling_gflop_per_s"]["1"])


@pytest.mark.parametrize("scale, model", [("quick", "MLP3"), ("long", "MLP3"), ("gpu", "MLP3"),
                                          ("paper", "MiniAlexNet")])
def test_heavy_tail_cases_time_the_model_the_scale_trains(scale, model):
    """The bench and the GPU probe time heavy-tail's own model per scale: card v5/v6's MLP3 surrogate at quick,
    long and gpu, MiniAlexNet at paper (the probe's sizing of the gpu scale rests on it)."""
    from claimbench.claims import load_params

    cfg = load_params(PARAMS, scale).claims["heavy_tail_phases"]
    cases = bench.heavy_tail_phases(cfg)
    assert [c.name.split(" ")[0] for c in cases] == [model, model]
    assert [c.tc.batch_size for c in cases] == [min(cfg.batch_sizes), max(cfg.batch_sizes)]
    assert (type(cases[0].model).__name__ == "MLP3") == (model == "MLP3")


def test_prefix_selects_one_claim():
    assert bench.select("heavy,el2n_pruning") == ["heavy_tail_phases", "el2n_pruning"]
    assert bench.select(None) == list(bench.claim_ids())


@pytest.mark.parametrize("argv", [["--models", "resnet"], ["--scale", "huge"], ["--seconds", "x"],
                                  ["--threads", "0"], ["--frobnicate"]])
def test_bad_argument_exits_2_with_one_line(capsys, argv):
    assert bench.main([*argv, "--params", PARAMS]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1


def test_knobs_rows_time_each_engine_mode_interleaved_against_the_engine_off(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    rc = bench.main(["--scale", "ci", "--seconds", "0.05", "--models", "simpson", "--threads", "1", "--knobs",
                     "--params", PARAMS, "--json", str(out_json)])
    assert rc == 0
    res = json.loads(out_json.read_text())
    assert res["knobs"] is True
    rows = {r["knob"]: r for r in res["rows"]}
    assert list(rows) == list(bench.KNOBS)
    assert rows["off"]["x_off"] == 1.0
    for r in rows.values():
        assert r["steps_per_s"] > 0 and r["x_off"] == pytest.approx(r["steps_per_s"] / rows["off"]["steps_per_s"])
    out = capsys.readouterr().out
    assert "| engine | × off |" in out and re.search(r"\| fused\+channels_last \| \d+\.\d\d \|", out)


def test_knobs_with_workers_is_refused_in_one_line(capsys):
    assert bench.main(["--knobs", "--workers", "2", "--params", PARAMS]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
