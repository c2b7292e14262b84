"""params.yaml validation: every bad key or value gives one message naming key, value and what is allowed."""

import pytest
import yaml

from claimbench.claims import load_params
from claimbench.errors import ParamsError


def write(root, mutate):
    p = yaml.safe_load((root / "params.yaml").read_text())
    mutate(p)
    (root / "params.yaml").write_text(yaml.safe_dump(p))


def test_valid_params_load_selected_scale(toy_root):
    params = load_params(toy_root / "params.yaml")
    assert params.scale == "ci"
    assert params.claims["toy"].per_class == 20
    assert load_params(toy_root / "params.yaml", scale="gpu").scale == "gpu"


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda p: p.update(scale="huge"), ["scale = 'huge'", "ci, quick, long, gpu, paper"]),
        (lambda p: p.update(typo_section={}), ["unknown top-level key 'typo_section'"]),
        (lambda p: p["toy"]["quick"].update(lr=0.1), ["unknown key toy.quick.lr", "per_class"]),
        (lambda p: p["toy"]["gpu"].update(epochs="ten"), ["toy.gpu.epochs = 'ten'", "expected int"]),
        (lambda p: p["toy"]["ci"].update(epochs=0), ["toy.ci.epochs = 0", "> 0"]),
        (lambda p: p["toy"]["ci"].update(seeds=[0, "a"]), ["toy.ci.seeds[1]", "expected int"]),
        (lambda p: p["toy"]["ci"].pop("per_class"), ["missing key toy.ci.per_class"]),
        (lambda p: p["toy"].pop("paper"), ["toy must have exactly the scales"]),
        (lambda p: p.pop("toy"), ["missing section 'toy'"]),
        (lambda p: p["data"].update(device="tpu"), ["data.device = 'tpu'", "'auto', 'cpu', 'cuda'"]),
    ],
)
def test_bad_params_name_key_value_and_allowed(toy_root, mutate, expect):
    write(toy_root, mutate)
    with pytest.raises(ParamsError) as e:
        load_params(toy_root / "params.yaml")
    for fragment in expect:
        assert fragment in str(e.value)


def test_bool_is_not_an_int(toy_root):
    write(toy_root, lambda p: p["toy"]["ci"].update(epochs=True))
    with pytest.raises(ParamsError, match="toy.ci.epochs = True"):
        load_params(toy_root / "params.yaml")


def test_env_overrides_scale_and_is_validated(toy_root, monkeypatch):
    monkeypatch.setenv("CLAIMBENCH_SCALE", "paper")
    assert load_params(toy_root / "params.yaml").scale == "paper"
    monkeypatch.setenv("CLAIMBENCH_SCALE", "nope")
    with pytest.raises(ParamsError, match="scale = 'nope'"):
        load_params(toy_root / "params.yaml")


def test_missing_or_invalid_file(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("scale: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_committed_params_are_valid():
    from conftest import REPO

    for scale in ("ci", "quick", "long", "gpu", "paper"):
        assert load_params(REPO / "params.yaml", scale=scale).scale == scale


@pytest.mark.parametrize("claim_id, key", [("neural_collapse", "seeds"), ("heavy_tail_phases", "seeds")])
def test_repeated_seeds_are_rejected(claim_id, key):
    """A repeated seed is not an independent replicate: it would shrink the error bars."""
    import yaml
    from conftest import REPO

    from claimbench.claims import registry
    from claimbench.params import build_config

    section = yaml.safe_load((REPO / "params.yaml").read_text())[claim_id]["quick"]
    build_config(registry()[claim_id].Config, section, f"{claim_id}.quick")  # the committed one is fine
    with pytest.raises(ParamsError, match=rf"{claim_id}.quick.{key} = \[0, 0, 1\] repeats seed\(s\) \[0\]"):
        build_config(registry()[claim_id].Config, {**section, key: [0, 0, 1]}, f"{claim_id}.quick")


def test_repeated_seeds_in_params_yaml_stop_the_stage_with_exit_2(toy_root, capsys):
    from claimbench.stage import main

    text = (toy_root / "params.yaml").read_text()
    (toy_root / "params.yaml").write_text(text.replace("- 1", "- 0", 1))
    assert main("toy", ["train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: params: toy.") and "repeats seed(s) [0]" in err


def test_every_executor_default_lives_in_one_place():
    """ExecutorParams' defaults are the only ones: params.yaml's executor block restates none of them (a
    restated value would be a second default that can drift), and a missing block gives those defaults."""
    import dataclasses

    from conftest import REPO

    from claimbench.params import ExecutorParams

    block = yaml.safe_load((REPO / "params.yaml").read_text()).get("executor") or {}
    defaults = {f.name: f.default for f in dataclasses.fields(ExecutorParams)}
    assert not [k for k, v in block.items() if defaults.get(k) == v], f"params.yaml restates defaults: {block}"
    assert load_params(REPO / "params.yaml").executor == ExecutorParams(**block)
    assert ExecutorParams().workers == 2  # what the measured suite times assume (docs/measurements.md)
