"""The test-time behaviour label (inference/translator.py set_inference_behaviour) describes the
network truthfully: batch statistics only where it has batch norm, a per-image norm as the
same in both modes, dropout on/off only where it has Dropout layers. The oracle is the
network's own behaviour: what the label calls mode-free gives the same output in train and
eval mode, and "no dropout layers" gives the same output under different seeds."""
from __future__ import annotations

import pytest
import torch

from inference.translator import set_inference_behaviour
from models.networks import build_generator
from models.norms import NORMS


def generator(norm: str, dropout: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_generator("resnet_6blocks", input_nc=3, output_nc=3, ngf=4, norm=norm, dropout=dropout)


def output(net: torch.nn.Module, eval_mode: bool, seed: int) -> torch.Tensor:
    set_inference_behaviour(net, eval_mode, "running", None)
    x = torch.linspace(-1, 1, 2 * 3 * 16 * 16).reshape(2, 3, 16, 16)
    torch.manual_seed(seed)
    with torch.no_grad():
        return net(x)


EXPECTED_NORM = {"batch": "batch norm: batch statistics", "syncbatch": "batch norm: batch statistics",
                 "instance": "instance norm: per-image statistics (the same in train and eval mode)",
                 "group": "group norm: per-image statistics (the same in train and eval mode)",
                 "layer": "layer norm: per-image statistics (the same in train and eval mode)",
                 "none": "no norm layers"}


def test_every_norm_has_an_expected_label() -> None:
    assert set(EXPECTED_NORM) == set(NORMS.names())


@pytest.mark.parametrize("norm", NORMS.names())
@pytest.mark.parametrize("dropout", [True, False], ids=["dropout", "no_dropout"])
def test_the_label_says_what_the_network_does(norm: str, dropout: bool) -> None:
    net = generator(norm, dropout)
    paper = set_inference_behaviour(net, False, "running", None)
    assert paper == f"{EXPECTED_NORM[norm]}; {'dropout on' if dropout else 'no dropout layers'}"
    evaluated = set_inference_behaviour(net, True, "running", None)
    norm_part = "batch norm: eval, bn_eval=running" if "batch" in norm else EXPECTED_NORM[norm]
    assert evaluated == f"{norm_part}; {'dropout off' if dropout else 'no dropout layers'}"
    # The oracle: the network's outputs.
    if not dropout:
        assert torch.equal(output(net, False, 1), output(net, False, 2))   # nothing random
        if "batch" not in norm:
            assert torch.allclose(output(net, False, 1), output(net, True, 1), atol=1e-6)   # mode-free
    else:
        assert not torch.equal(output(net, False, 1), output(net, False, 2))   # dropout draws


def test_a_typed_dropout_on_a_network_without_dropout_layers_is_not_called_on() -> None:
    assert set_inference_behaviour(generator("batch", False), True, "batch", "on") == \
        "batch norm: eval, bn_eval=batch; no dropout layers"
