"""`python -m claimbench <verb>`: every verb answers --help with text and exit 0; an unknown verb, or one
whose module is absent, is one line on stderr and exit 2; `run` hands a claim to its stage."""

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import REPO

from claimbench import __main__ as front
from claimbench.claims import claim_ids


def call(argv, capsys) -> tuple[int, str, str]:
    try:
        rc = front.main(argv)
    except SystemExit as e:  # argparse's --help exits
        rc = e.code or 0
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_help_lists_every_verb_with_one_line_each():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "claimbench", "--help"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == ""
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(front.VERBS)
    assert all(len(line.split(None, 1)) == 2 for line in out.stdout.splitlines() if line.startswith("  "))


PRESENT = [v for v, (target, _) in front.VERBS.items() if importlib.util.find_spec(target.split(":")[0]) is not None]


@pytest.mark.parametrize("verb", PRESENT)
def test_every_verb_prints_useful_help(verb, capsys):
    rc, out, err = call([verb, "--help"], capsys)
    assert rc == 0, err
    assert out.startswith("usage:") and len(out.split()) > 12, out  # a usage line and what the verb does


def test_report_help_is_not_empty(capsys):
    """`python -m claimbench.report --help` once printed nothing: the module had no __main__ guard."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "claimbench.report", "--help"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "claims.md" in out.stdout and "--root" in out.stdout


def test_an_unknown_verb_is_one_line_and_exit_2(capsys):
    rc, out, err = call(["frobnicate"], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "unknown verb 'frobnicate'" in err and "report" in err


def test_a_verb_whose_module_is_absent_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.setitem(front.VERBS, "ghost", ("claimbench.no_such_module:main", "not here"))
    rc, out, err = call(["ghost", "--help"], capsys)
    assert rc == 2 and out == "" and err == ("python -m claimbench ghost: claimbench.no_such_module is not in this "
                                             "install; see python -m claimbench --help\n")
    if "claimbench.gpu_probe" not in sys.modules and importlib.util.find_spec("claimbench.gpu_probe") is None:
        rc, _, err = call(["probe"], capsys)
        assert rc == 2 and err.count("\n") == 1 and "claimbench.gpu_probe is not in this install" in err


def test_run_lists_the_claims_and_refuses_an_unknown_one(capsys):
    rc, out, _ = call(["run", "--help"], capsys)
    assert rc == 0 and all(c in out for c in claim_ids())
    rc, out, err = call(["run", "nope", "train"], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "unknown claim 'nope'" in err


def test_run_hands_the_claim_to_its_stage(capsys, monkeypatch):
    import claimbench.stage

    seen = []
    monkeypatch.setattr(claimbench.stage, "main", lambda cid, argv: seen.append((cid, argv)) or 0)
    cid = claim_ids()[0]
    assert call(["run", cid, "analyse", "--scale", "ci"], capsys)[0] == 0
    assert seen == [(cid, ["analyse", "--scale", "ci"])]
