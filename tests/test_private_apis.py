"""The private APIs the project relies on, each used in one small place, fail here loudly when
a release of their library changes them (instead of silently misbehaving):

- visdom's ``Visdom._handle_post`` (reporting/visdom_client.py: a timeout on every request);
- argparse's ``ArgumentParser._actions`` (options/parse.py: the names of a parser's options);
- ``torch.ops.mkldnn._is_mkldnn_bf16_supported`` (engine/speed.py: bf16 on the CPU);
- ``torch.ops.aten._slow_conv2d_forward``/``_slow_conv2d_backward`` and
  ``slow_conv_transpose2d`` (models/networks/conv.py: torch's native convolution kernels,
  picked per call instead of by the process-wide oneDNN switch);
- argparse's ``HelpFormatter._split_lines`` (options/base.py: help texts keep their line breaks)
  and ``argparse._ArgumentGroup`` (the type of the group every ``add_*_options`` fills);
- torch's ``Module._load_from_state_dict`` (models/batchnorm.py: old BatchNorm files load),
  ``nn.modules.batchnorm._BatchNorm`` (models/batchnorm.py: native layers that ignore
  ``--bn_eval``) and ``_orig_mod`` of a torch.compile'd module (engine/distributed.py: unwrap).
"""
from __future__ import annotations

import argparse
import inspect
import socket
import threading

import torch
import visdom

import reporting.visdom_client as visdom_client
from engine.distributed import unwrap
from engine.speed import onednn_bf16_supported
from models.batchnorm import set_bn_eval_mode
from options.base import HelpFormatter
from options.parse import build_parser, explicit_options, option_names


# -- visdom -------------------------------------------------------------------------------------
def test_visdom_still_sends_every_request_through_handle_post():
    hook = inspect.signature(visdom.Visdom._handle_post)
    assert list(hook.parameters) == ["self", "url", "data"] and hook.parameters["data"].default is None
    assert "self._handle_post(" in inspect.getsource(visdom.Visdom._send)


def test_a_silent_visdom_server_times_out_instead_of_hanging(monkeypatch):
    """A server that accepts the connection and never answers: the client gives up after
    REQUEST_TIMEOUT_S (made short here) with an error, where the stock client would wait forever."""
    monkeypatch.setattr(visdom_client, "REQUEST_TIMEOUT_S", 0.3)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    outcome: list[BaseException | object] = []

    def connect() -> None:
        try:
            # Construction posts the environment at once, through the overridden hook.
            outcome.append(visdom_client.visdom_client_class(visdom)(
                server="http://127.0.0.1", port=port, env="t", raise_exceptions=True, use_incoming_socket=False))
        except BaseException as err:  # noqa: BLE001 - the error is the expected outcome
            outcome.append(err)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(60)
    silent.close()
    assert not thread.is_alive(), "the visdom client ignored the request timeout"
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectionError), outcome


# -- argparse -----------------------------------------------------------------------------------
def test_option_names_lists_every_option_including_those_in_groups():
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", default=1)
    group = parser.add_argument_group("g")
    group.add_argument("--beta", action="store_true")
    parser.add_argument("gamma", nargs="?")
    assert option_names(parser) == {"alpha", "beta", "gamma"}   # not "help", which holds no value
    # The private attribute still is the list of Action objects it is read from.
    assert all(isinstance(a, argparse.Action) for a in parser._actions)


def test_explicit_options_are_exactly_the_typed_ones():
    parser = build_parser(is_train=True)
    names = option_names(parser)
    assert {"ngf", "netG", "dataroot", "lr"} <= names
    typed = explicit_options(parser, ["--ngf", "64", "--no_flip", "--lr", "0.1", "--name=x"])
    assert typed == ["lr", "name", "ngf", "no_flip"]   # --ngf 64 equals its default: still typed
    # The parser is left as it was: defaults still apply to a normal parse.
    assert parser.parse_args([]).ngf == 64 and explicit_options(parser, []) == []


def test_help_formatter_still_splits_help_through_split_lines():
    hook = inspect.signature(argparse.HelpFormatter._split_lines)
    assert list(hook.parameters) == ["self", "text", "width"]
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--pick", default="a", help="one of:\n  a: the first\n  b: the second")
    lines = [line.strip() for line in parser.format_help().splitlines()]
    # Stock argparse would join the three parts into one paragraph.
    assert "a: the first" in lines and any(line.startswith("b: the second") for line in lines)


def test_argument_groups_are_still_argument_group_objects():
    group = argparse.ArgumentParser().add_argument_group("g")
    assert type(group) is argparse._ArgumentGroup and hasattr(group, "add_argument")


# -- torch --------------------------------------------------------------------------------------
def test_onednn_bf16_check_is_still_there():
    assert hasattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported")
    answer = onednn_bf16_supported()
    assert isinstance(answer, bool)
    # On x86, oneDNN's bf16 needs at least AVX-512 (BW/VL/DQ: "avx512_core"); where torch lists
    # the CPU's features, a CPU with native AVX512-BF16 or AMX-BF16 must get a yes.
    caps = getattr(torch.cpu, "get_capabilities", lambda: {})()
    if caps.get("avx512_bf16") or caps.get("amx_bf16"):
        assert answer
    if caps.get("architecture") == "x86_64" and not caps.get("avx512_bw"):
        assert not answer


def test_the_native_convolution_operators_keep_their_schemas():
    aten = torch.ops.aten
    assert str(aten._slow_conv2d_forward.default._schema).startswith(
        "aten::_slow_conv2d_forward(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias, "
        "SymInt[2] stride, SymInt[2] padding)")
    assert str(aten._slow_conv2d_backward.output_mask._schema).startswith(
        "aten::_slow_conv2d_backward.output_mask(Tensor grad_output, Tensor self, Tensor weight, "
        "SymInt[2] kernel_size, SymInt[2] stride, SymInt[2] padding, bool[3] output_mask)")
    assert str(aten.slow_conv_transpose2d.default._schema).startswith(
        "aten::slow_conv_transpose2d(Tensor self, Tensor weight, SymInt[2] kernel_size, Tensor? bias=None, "
        "SymInt[2] stride=[1, 1], SymInt[2] padding=[0, 0], SymInt[2] output_padding=[0, 0], SymInt[2] dilation=[1, 1])")
    # They are still the kernels torch takes with oneDNN off: equal to the bit.
    torch.manual_seed(0)
    x, w, b = torch.randn(1, 8, 4, 4), torch.randn(6, 8, 4, 4), torch.randn(6)
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        down = torch.nn.functional.conv2d(x, w, b, 2, 1)
        up = torch.nn.functional.conv_transpose2d(down, w, b[:0].new_zeros(8), 2, 1)
    finally:
        torch.backends.mkldnn.enabled = previous
    assert torch.equal(aten._slow_conv2d_forward(x, w, [4, 4], b, [2, 2], [1, 1]), down)
    assert torch.equal(aten.slow_conv_transpose2d(down, w, [4, 4], b[:0].new_zeros(8), [2, 2], [1, 1]), up)


def test_module_still_loads_state_through_load_from_state_dict():
    hook = inspect.signature(torch.nn.Module._load_from_state_dict)
    assert list(hook.parameters) == ["self", "state_dict", "prefix", "local_metadata", "strict", "missing_keys",
                                     "unexpected_keys", "error_msgs"]
    assert "_load_from_state_dict(" in inspect.getsource(torch.nn.Module.load_state_dict)


def test_native_batch_norms_still_share_the_private_base_class(caplog):
    base = torch.nn.modules.batchnorm._BatchNorm
    assert all(issubclass(cls, base) for cls in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d))
    with caplog.at_level("WARNING"):
        assert set_bn_eval_mode(torch.nn.Sequential(torch.nn.BatchNorm2d(3)), "batch") == 0
    assert "1 native torch BatchNorm layer(s) ignore --bn_eval batch" in caplog.text


def test_a_compiled_module_still_keeps_the_plain_one_as_orig_mod():
    net = torch.nn.Linear(2, 2)
    compiled = torch.compile(net)   # lazy: nothing is compiled before the first call
    assert compiled._orig_mod is net and unwrap(compiled) is net
