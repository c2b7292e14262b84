"""One claim list: the registry, in each package's ORDER. A sixth claim that joins with no edit outside its
own package (here: the toy claim, registered as claimbench.claims.toy with ORDER = 0) is on every page the
report writes and in every command's claim list, in registry order."""

import sys
import textwrap

import pytest
import yaml
from conftest import FIXTURES, REPO
from test_robustness import _write
from test_stage_and_report import make_results

import claimbench.claims
from claimbench import bench, report, robustness, suite
from claimbench.claims import choose, claim_ids, ordered, registry
from claimbench.errors import ClaimbenchError

FIVE = ["heavy_tail_phases", "simpson_paradox", "activation_sparsity", "neural_collapse", "el2n_pruning"]
SIXTH = "toy"


@pytest.fixture
def sixth(tmp_path, monkeypatch):
    """The toy claim as a registered claim package, found by the registry like any other (ORDER = 0: first)."""
    pkg = tmp_path / "extra" / SIXTH
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(f"""\
        from toy_claim import Config

        CLAIM_ID = "{SIXTH}"
        ORDER = 0


        def with_seed_set(cfg, k):
            return cfg
        """))
    (pkg / "train.py").write_text("from toy_claim import load_data, plan, run_one  # noqa: F401\n")
    (pkg / "analyse.py").write_text("from toy_claim import analyse  # noqa: F401\n")
    (pkg / "figures.py").write_text("from toy_claim import DVC_PLOTS, figures  # noqa: F401\n")
    monkeypatch.setattr(claimbench.claims, "__path__", [*claimbench.claims.__path__, str(pkg.parent)])
    yield [SIXTH, *FIVE]
    for name in [m for m in sys.modules if m.split(".")[:3] == ["claimbench", "claims", SIXTH]]:
        del sys.modules[name]


def test_the_registry_orders_the_five_claims_by_their_order():
    assert claim_ids() == list(registry()) == FIVE
    assert [registry()[c].package.ORDER for c in FIVE] == [1, 2, 3, 4, 5]
    assert ordered(["zeta", "el2n_pruning", "alpha", "heavy_tail_phases"]) == \
        ["heavy_tail_phases", "el2n_pruning", "alpha", "zeta"]
    assert choose(None) == FIVE and choose(["el2n_pruning"]) == ["el2n_pruning"]
    with pytest.raises(ClaimbenchError, match="unknown claim 'nope'; known: heavy_tail_phases, simpson_paradox"):
        choose(["nope"])


def test_a_sixth_claim_joins_the_registry_in_its_order(sixth):
    assert claim_ids() == sixth
    assert registry()[SIXTH].train.plan is not None and choose(None) == sixth


def test_a_sixth_claim_is_on_every_page_of_the_report(sixth, tmp_path):
    root = tmp_path / "repo"
    make_results(root)  # a toy result at quick, judged by the fixture card toy.yaml
    text, df, block = report.render(root, FIXTURES)
    heads = [line.split("(`")[1].rstrip("`)") for line in text.splitlines() if line.startswith("## ")]
    assert heads == sixth  # claims.md: one section per claim, in registry order
    assert list(dict.fromkeys(df.id)) == sixth  # claims_table.{csv,md,tex}
    readme_rows = block.splitlines()[3:-1]  # README's block: markers, header and rule, then one row per claim
    assert len(readme_rows) == len(sixth) and f"[{SIXTH}](src/claimbench/cards/{SIXTH}.yaml)" in readme_rows[0]
    assert all(f"| {cid} | – |" in row for cid, row in zip(FIVE, readme_rows[1:]))  # card-less: id as title
    null = report.null_page(claimbench.cards.all_cards(FIXTURES), report.load_results(root / "results"))
    assert f"| {SIXTH} | quick |" in null


def test_a_sixth_claim_is_on_the_robustness_page(sixth, tmp_path):
    _write(tmp_path, SIXTH, "reproduced")
    _write(tmp_path, f"seedset1/{SIXTH}", "not reproduced")
    text, differ = robustness.page(tmp_path, "quick", 1)
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == sixth  # one row per registered claim, in registry order
    assert differ == []  # no card judges the fake claim's records here, so no conflict can be computed


@pytest.mark.parametrize("command", [bench, suite, robustness], ids=lambda m: m.__name__)
def test_a_sixth_claim_is_in_every_commands_claim_list(sixth, command, capsys):
    with pytest.raises(SystemExit):
        command.main(["--help"])
    listed = "".join(capsys.readouterr().out.split())  # argparse wraps the help text, even inside a word
    assert "inorder:" + ",".join(sixth) in listed, listed


def test_bench_lists_a_claim_it_has_no_cases_for_instead_of_dropping_it(sixth, tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw[SIXTH] = {s: {"per_class": 2, "epochs": 1} for s in ("ci", "quick", "long", "gpu", "paper")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert bench.select(None) == sixth
    res = bench.bench("ci", 0.01, SIXTH, None, str(tmp_path / "params.yaml"))
    assert res["rows"] == [] and res["untimed"] == [SIXTH]
    assert bench.table(res).endswith(f"Not timed (no benchmark cases: give the claim's train.py a "
                                     f"`bench_cases(cfg)`): {SIXTH}")
