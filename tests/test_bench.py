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


def test_prefix_selects_one_claim():
    assert bench.select("heavy,el2n_pruning") == ["heavy_tail_phases", "el2n_pruning"]
    assert bench.select(None) == list(bench.claim_ids())


@pytest.mark.parametrize("argv", [["--models", "resnet"], ["--scale", "huge"], ["--seconds", "x"],
                                  ["--threads", "0"], ["--frobnicate"]])
def test_bad_argument_exits_2_with_one_line(capsys, argv):
    assert bench.main([*argv, "--params", PARAMS]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
