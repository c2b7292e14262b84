"""End to end: `dvc repro` at the `ci` scale in a temporary copy of the repository, offline, and the
ci numbers on two CPU kernel paths and two thread counts against the committed reference."""

import json

import pytest
from conftest import REPO

from claimbench.claims import claim_modules
from claimbench.reference import REFERENCE, collect, compare

pytestmark = [pytest.mark.slow, pytest.mark.needs_data, pytest.mark.needs_data("tinyshakespeare")]


def provenance_of(root):
    return {cid: json.loads((root / "results" / "ci" / cid / "metrics.json").read_text())["provenance"]
            for cid in claim_modules()}


def test_dvc_repro_ci_scale_writes_every_claim_and_report(ci_repo):
    for claim_id in claim_modules():
        rec = json.loads((ci_repo / "results" / "ci" / claim_id / "metrics.json").read_text())
        assert rec["scale"] == "ci" and rec["verdict"] in {"reproduced", "partially reproduced", "not reproduced"}
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
