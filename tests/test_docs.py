"""The README a newcomer reads in five minutes, and docs that stay true: the README is short and starts
with set-up, every relative link resolves, every `python -m claimbench <verb>` named exists, and the
measured facts in docs/measurements.md are what the records and the test collection give."""

import re

import pytest
from conftest import REPO

from claimbench import facts
from claimbench.__main__ import VERBS

PAGES = [REPO / "README.md", REPO / "ADDING_A_CLAIM.md", *sorted((REPO / "docs").glob("*.md"))]


def test_readme_is_short_and_starts_with_setup_and_tests():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines (limit 150): move detail into docs/"
    head = "\n".join(lines[:40])
    for command in ("bash setup.sh", "dvc repro", "python -m pytest -q"):
        assert re.search(rf"^{re.escape(command)}\b", head, re.M), f"`{command}` is not in README's first 40 lines"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    missing = [target for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
               if "://" not in target and not (page.parent / target).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_verb_named_exists(page):
    named = set(re.findall(r"python -m claimbench ([a-z][a-z-]*)", page.read_text()))
    assert named <= set(VERBS), f"{page.name} names verbs that do not exist: {sorted(named - set(VERBS))}"


def test_measured_facts_are_what_the_records_and_the_test_collection_give():
    page = (REPO / facts.PAGE).read_text()
    fresh = facts.replace_block(page, facts.block(REPO, facts.test_count(REPO)))
    assert fresh == page, f"{facts.PAGE} is stale: run `python -m claimbench docs` and commit it"


def test_the_facts_block_reports_a_timed_record(tmp_path):
    """A record written by timed-run appears with its wall time, scale and machine; the test count is
    the one given; a tests.json record gives the suite's wall time."""
    runs = tmp_path / facts.RUNS
    runs.mkdir(parents=True)
    rec = {"name": "tests", "command": "python -m pytest -q", "exit_status": 0, "scale": "quick",
           "start_utc": "2026-12-06T01:00:00+00:00", "wall_s": 360.0, "from_clean": False, "git_sha": "abcdef1234567",
           "git_dirty": False, "cpu_count": 2, "cpu_model": "Xeon", "cpu_kernels": "AVX512"}
    (runs / "tests.json").write_text(__import__("json").dumps(rec))
    text = facts.block(tmp_path, 7)
    assert "collects **7** tests" in text and "The whole test suite took 6.0 min on a 2-core Xeon (AVX512)" in text
    assert "| `tests` | `python -m pytest -q` | quick | 6.0 min | no | 0 | 2-core Xeon (AVX512) | abcdef1234 | " \
           "2026-12-06 |" in text
    with pytest.raises(ValueError, match="markers"):
        facts.replace_block("no markers here", text)


def test_adding_a_claim_explains_the_order():
    text = (REPO / "ADDING_A_CLAIM.md").read_text()
    assert "ORDER" in text and "registry" in text
