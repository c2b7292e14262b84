"""Floating-point policy: ci in float64, the rest float32; upcast keeps float64; machine facts recorded."""

import pytest
import torch

from claimbench.numerics import SCALE_DTYPE, machine_facts, upcast, use_scale_dtype


def test_ci_is_float64_and_the_other_scales_float32():
    assert SCALE_DTYPE == {"ci": torch.float64, "quick": torch.float32, "long": torch.float32,
                           "gpu": torch.float32, "paper": torch.float32}
    assert use_scale_dtype("ci") == torch.float64 and torch.ones(1).dtype == torch.float64
    assert torch.nn.Linear(2, 2).weight.dtype == torch.float64
    use_scale_dtype("quick")
    assert torch.ones(1).dtype == torch.float32


@pytest.mark.parametrize("dtype, want", [(torch.bfloat16, torch.float32), (torch.float16, torch.float32),
                                         (torch.float32, torch.float32), (torch.float64, torch.float64),
                                         (torch.int64, torch.float32)])
def test_upcast_raises_half_precision_and_keeps_full_precision(dtype, want):
    t = torch.tensor([1.0, 2.5]).to(dtype)
    assert upcast(t).dtype == want
    if dtype == torch.float64:
        assert upcast(t) is t  # no copy, no rounding through float32


def test_float64_loss_is_not_rounded_through_float32():
    """The ci scale depends on this: a float64 model's loss must stay float64 end to end."""
    from claimbench.collapse_losses import make_loss
    from claimbench.train import cross_entropy

    logits = torch.tensor([[1.0 + 1e-12, 1.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0])
    for loss in (cross_entropy(logits, y), *(make_loss(n)(logits, y) for n in ("ce", "ls", "fl", "mse"))):
        assert loss.dtype == torch.float64
    cross_entropy(logits, y).backward()
    assert logits.grad.dtype == torch.float64


def test_machine_facts_name_cpu_kernels_threads_and_dtype():
    facts = machine_facts()
    assert set(facts) == {"cpu_model", "cpu_kernels", "torch_threads", "float_dtype"}
    assert facts["cpu_model"] and facts["cpu_kernels"]  # e.g. AVX512, AVX2, DEFAULT
    assert facts["torch_threads"] == torch.get_num_threads() and facts["float_dtype"] == "float32"
