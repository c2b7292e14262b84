"""End to end: `dvc repro` at the `ci` scale in a temporary copy of the repository, offline, and the
ci numbers on two CPU kernel paths and two thread counts against the committed reference."""

import json
import subprocess

import pytest
from conftest import REPO

from claimbench.claims import registry
from claimbench.reference import REFERENCE, collect, compare

pytestmark = [pytest.mark.slow, pytest.mark.needs_data, pytest.mark.needs_data("tinyshakespeare")]


def provenance_of(root):
    return {cid: json.loads((root / "results" / "ci" / cid / "metrics.json").read_text())["provenance"]
            for cid in registry()}


def test_dvc_repro_ci_scale_writes_every_claim_and_report(ci_repo):
    for claim_id in registry():
        rec = json.loads((ci_repo / "results" / "ci" / claim_id / "metrics.json").read_text())
        assert rec["scale"] == "ci"
        assert rec["verdict"] in {"reproduced", "partially reproduced", "not reproduced", "inconclusive"}
        assert rec["verdict"] != "inconclusive" or rec["verdict_reason"]
        prov = rec["provenance"]
        assert prov["git_sha"] and prov["wall_s"] >= 0 and prov["float_dtype"] == "float64"
        assert prov["cpu_model"] and prov["cpu_kernels"] and prov["torch_threads"] >= 1
    text = (ci_repo / "results" / "claims.md").read_text()
    assert "# claimbench — claims and verdicts" in text


def test_ci_numbers_match_the_committed_reference(ci_repo):
    """Every ci statistic and verdict equals tests/reference/ci_statistics.json (tests/reference/README.md)."""
    reference = json.loads((REPO / REFERENCE).read_text())
    problems = compare(reference, collect(ci_repo / "results" / "ci"))
    assert not problems, "ci numbers moved (refresh deliberately: python -m claimbench.reference refresh):\n" + \
        "\n".join(problems)


def test_ci_numbers_do_not_depend_on_kernel_path_or_threads(ci_repo, ci_repo_other_kernels):
    """The same reference holds on the other kernel path (avx2 where this CPU runs avx512) with 1 thread,
    all claims run in one process instead of one per stage."""
    reference = json.loads((REPO / REFERENCE).read_text())
    problems = compare(reference, collect(ci_repo_other_kernels / "results" / "ci"))
    assert not problems, "ci numbers depend on the CPU kernels or threads:\n" + "\n".join(problems)
    native, other = provenance_of(ci_repo), provenance_of(ci_repo_other_kernels)
    for cid in native:
        assert other[cid]["cpu_kernels"] == "AVX2" and other[cid]["torch_threads"] == 1, other[cid]
    print(f"kernel paths compared: {native[cid]['cpu_kernels']} ({native[cid]['torch_threads']} threads) "
          f"and AVX2 (1 thread)")


def test_readme_dvc_metrics_and_plots_commands_work(ci_repo):
    """`dvc metrics show` lists each claim's verdict, headline and gating statistics (README), and
    `dvc plots show` renders the comparison plots into the git-ignored dvc_plots/."""
    from conftest import run

    out = run(["dvc", "metrics", "show", "--json"], ci_repo, None).stdout
    shown = {}
    for rev in json.loads(out).values():
        for path, body in rev["data"].items():
            shown[path] = body["data"]
    for cid in registry():
        rec = json.loads((ci_repo / "results" / "ci" / cid / "metrics.json").read_text())
        got = shown[f"results/ci/{cid}/headline.json"]
        assert got["verdict"] == rec["verdict"]
        gating = {ch["statistic"] for c in rec["criteria"] if c["gating"] for ch in c["checks"]
                  if ch["value"] is not None}  # dvc metrics show leaves out undefined (null) values
        assert gating and gating <= set(got["gating"]), cid
    table = run(["dvc", "metrics", "show"], ci_repo, None).stdout
    assert all(f"results/ci/{cid}/headline.json" in table for cid in registry())
    run(["dvc", "plots", "show"], ci_repo, None)
    html = (ci_repo / "dvc_plots" / "index.html").read_text()
    for plot in ("heavy_tail_softrank_vs_batch_size", "simpson_alpha_vs_test_acc", "neural_collapse_nc1_vs_epoch",
                 "el2n_accuracy_vs_fraction_pruned", "activation_sparsity_nonzero_vs_step"):
        assert plot in html, plot
    ignored = subprocess.run(["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=REPO)
    assert ignored.returncode == 0, "dvc_plots/ must be git-ignored"
