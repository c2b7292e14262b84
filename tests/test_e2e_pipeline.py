"""End to end: `dvc repro` at the `ci` scale in a temporary copy of the repository, offline."""

import json
import os
import shutil
import subprocess

import pytest
from conftest import REPO

from claimbench.claims import claim_modules
from claimbench.data import fashion_mnist_dir


def run(cmd, cwd, env):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="session")
def ci_repo(tmp_path_factory):
    """A fresh copy of the committed tree (+ uncommitted, non-ignored files), reproduced at scale ci."""
    root = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / f)
    shutil.rmtree(root / "results" / "ci", ignore_errors=True)
    env = {**os.environ, "CLAIMBENCH_DATA": str(fashion_mnist_dir().parent), "PYTHONPATH": str(root / "src"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(params.replace("\nscale: quick\n", "\nscale: ci\n", 1))
    run(["git", "init", "-q"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "snapshot"], root, env)
    run(["dvc", "repro", "--no-commit"], root, env)
    return root


@pytest.mark.slow
def test_dvc_repro_ci_scale_writes_every_claim_and_report(ci_repo):
    for claim_id in claim_modules():
        rec = json.loads((ci_repo / "results" / "ci" / claim_id / "metrics.json").read_text())
        assert rec["scale"] == "ci" and rec["verdict"] in {"reproduced", "partially reproduced", "not reproduced"}
        assert rec["provenance"]["git_sha"] and rec["provenance"]["wall_s"] >= 0
    text = (ci_repo / "results" / "claims.md").read_text()
    assert "# claimbench — claims and verdicts" in text


@pytest.mark.slow
def test_ci_numbers_match_the_committed_reference(ci_repo):
    """Every ci statistic and verdict equals tests/reference/ci_statistics.json (tight tolerance)."""
    from claimbench.reference import REFERENCE, collect, compare

    reference = json.loads((REPO / REFERENCE).read_text())
    problems = compare(reference, collect(ci_repo / "results" / "ci"))
    assert not problems, "ci numbers moved (refresh deliberately: python -m claimbench.reference refresh):\n" + \
        "\n".join(problems)
