"""--torch_threads: training with one intra-op thread learns like the default thread count
(the README's claim that every speed option learns like plain fp32; the other options are in
tests/test_speed_options.py and tests/test_compile.py)."""
from __future__ import annotations

import pytest
import torch

from engine.speed import BackendSettings, apply_backend_settings
from tests.test_speed_options import batches, tiny_model, train


def test_one_thread_learns_like_the_default():
    default_threads = torch.get_num_threads()
    want = train(tiny_model(), batches(3))
    try:
        in_force = apply_backend_settings(BackendSettings(torch_threads=1), torch.device("cpu"))
        assert in_force["torch_threads"] == torch.get_num_threads() == 1
        got = train(tiny_model("--torch_threads", "1"), batches(3))
    finally:
        torch.set_num_threads(default_threads)
    for step, (g, w) in enumerate(zip(got, want)):
        for name in w:
            # Another thread count sums in another order: equal up to float32 rounding.
            assert g[name] == pytest.approx(w[name], rel=1e-3, abs=1e-3), (step, name)
