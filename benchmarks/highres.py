"""Step time and peak memory of high-resolution training on the CPU: U-Net and the coarse-to-fine
generator (``--netG local``), with and without ``--grad_checkpoint``, at several sizes.

Each configuration runs alone in a child process (under ``nice``), so its peak resident memory
is its own: the child's VmHWM (the kernel's high-water mark of its RSS, torch and Python
included) at the end of its steps. The parent watches the child's RSS and stops it at
``--limit_gib`` (the machine is shared), recording that the configuration did not fit. The
largest square side that fits in ``--fit_gib`` is extrapolated from the two largest measured
sizes (peak memory is close to linear in the pixel count: weights and optimizer state are
constant, activations grow with the pixels); it is marked as an extrapolation.

    python benchmarks/highres.py                      # the table in README "High resolution"
    python benchmarks/highres.py --sizes 256 --configs unet_256
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What each configuration passes to train.py's options; the discriminator and losses are
# pix2pixHD's for all of them (two-scale PatchGAN with ndf 64, feature matching), batch 1, fp32;
# --ndf typed because without --dataroot the demo defaults (ndf 32) would apply.
COMMON = ["--ndf", "64", "--norm", "instance", "--netD", "multiscale", "--num_D", "2", "--lambda_feat", "10",
          "--batch_size", "1", "--gpu_ids", "-1", "--amp", "none", "--no_flip", "--preprocess", "none"]
CONFIGS: dict[str, list[str]] = {
    "unet_256": ["--netG", "unet_256", "--ngf", "64"],
    # As deep as unet_256 is at 256 px (1x1 innermost) at 1024 px.
    "unet_1024": ["--netG", "unet", "--num_downs", "10", "--ngf", "64"],
    "local": ["--netG", "local", "--ngf", "32"],   # the paper's widths: G2 32, G1 64..1024
}
GIB = 2 ** 30


def child(config: dict) -> dict:
    """One configuration in this process: build, ``steps`` training steps, report."""
    import torch

    from benchmarks.common import Variant, build_model, peak_memory_mb
    from engine.distributed import Runtime, unwrap
    from engine.machine import describe

    side = config["side"]
    args = [*COMMON, *CONFIGS[config["netG"]], "--crop_size", str(side), "--load_size", str(side)]
    if config["grad_checkpoint"]:
        args.append("--grad_checkpoint")
    runtime = Runtime(torch.device("cpu"), 0, 1, 0)
    model = build_model(args, Variant(), runtime)
    torch.manual_seed(0)
    batch = {k: torch.rand(1, 3, side, side) * 2 - 1 for k in ("A", "B")}
    built_mb = peak_memory_mb(runtime.device)
    times, cpu_times = [], []
    for _ in range(config["steps"]):
        start, cpu_start = time.perf_counter(), time.process_time()
        model.set_input(batch)
        model.train_step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    params = {name: sum(p.numel() for p in net.parameters()) for name, net in model.nets.items()}
    # CPU seconds (all threads) beside the wall time: on a machine shared with other jobs the
    # wall time mostly measures the waiting, the CPU time much less so.
    return {**config, "step_s": [round(t, 3) for t in times], "step_cpu_s": [round(t, 3) for t in cpu_times], "peak_rss_gib": round(peak_memory_mb(runtime.device) / 1024, 3),
            "peak_rss_after_build_gib": round(built_mb / 1024, 3), "params": params, "args": args,
            "size_multiple": unwrap(model.net_G).spec.size_multiple,
            "machine": describe(runtime.device)}


def saved_for_backward_mib(config: dict) -> dict:
    """The memory autograd keeps from one forward of G until its backward (saved-tensor hooks,
    each storage once, the weights left out; with checkpointing only the stages' inputs reach
    them): what activation checkpointing saves, without the noise of a process's RSS."""
    import torch

    from models.networks import generator_spec
    from options.parse import parse_options

    side = config["side"]
    opt = parse_options([*COMMON, *CONFIGS[config["netG"]], "--crop_size", str(side), "--load_size", str(side)],
                        is_train=True)
    torch.manual_seed(0)
    net = generator_spec(opt).build().train()
    net.set_grad_checkpoint(config["grad_checkpoint"])
    storages: dict[int, int] = {}   # several operations often keep the same tensor: count it once
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}   # kept anyway, not counted

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(torch.rand(1, 3, side, side) * 2 - 1)
    return {**config, "saved_for_backward_mib": round(sum(storages.values()) / 2 ** 20, 1)}


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(config: dict, limit_gib: float, timeout_s: float) -> dict:
    """Run one configuration in a niced child; stop it past ``limit_gib`` of RSS or ``timeout_s``."""
    cmd = ["nice", "-n", "10", sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(config)]
    # The child imports the project as the installed package does (or this clone, run in place).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    start, peak = time.monotonic(), 0
    while proc.poll() is None:
        peak = max(peak, rss_bytes(proc.pid))
        if peak > limit_gib * GIB or time.monotonic() - start > timeout_s:
            proc.kill()
            proc.wait()
            why = f"RSS above the {limit_gib} GiB limit" if peak > limit_gib * GIB else f"over {timeout_s:.0f} s"
            return {**config, "stopped": why, "rss_seen_gib": round(peak / GIB, 3)}
        time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode != 0:
        return {**config, "error": (err.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.strip().splitlines()[-1])


def largest_fitting_side(records: list[dict], fit_gib: float, multiple: int) -> int | None:
    """Linear in pixels through the two largest measured sides, solved for ``fit_gib``, rounded
    down to ``multiple``."""
    done = sorted((r["side"], r["peak_rss_gib"]) for r in records if "peak_rss_gib" in r)
    if len(done) < 2:
        return None
    (s1, m1), (s2, m2) = done[-2:]
    per_pixel = (m2 - m1) / (s2 * s2 - s1 * s1)
    if per_pixel <= 0:
        return None
    side = ((fit_gib - m2) / per_pixel + s2 * s2) ** 0.5
    return int(side // multiple * multiple)


def size_multiple_of(record: dict) -> int:
    """The generator's side multiple, from the options the configuration ran with."""
    if "size_multiple" in record:
        return record["size_multiple"]
    from models.networks import generator_spec
    from options.parse import parse_options
    return generator_spec(parse_options(record["args"], is_train=True)).size_multiple


def table(records: list[dict], fit_gib: float) -> str:
    rows = ["| configuration | --grad_checkpoint | side (px) | wall s/step | CPU s/step | peak RSS (GiB) |",
            "|---|---|---|---|---|---|"]
    order = list(CONFIGS)
    records = sorted(records, key=lambda r: (order.index(r["netG"]), r["side"], r["grad_checkpoint"]))
    for r in records:
        if "peak_rss_gib" in r:
            cells = f"{r['step_s'][-1]:.1f} | {r['step_cpu_s'][-1]:.1f} | {r['peak_rss_gib']:.2f}"
        else:
            cells = f"- | - | not run to the end: {r.get('stopped') or r.get('error')}"
        rows.append(f"| {r['netG']} | {'yes' if r['grad_checkpoint'] else 'no'} | {r['side']} | {cells} |")
    rows.append("")
    rows.append("Times: the last of each configuration's steps (the first pays for first-touch allocation).")
    for net in dict.fromkeys(r["netG"] for r in records):
        for ckpt in (False, True):
            subset = [r for r in records if r["netG"] == net and r["grad_checkpoint"] == ckpt]
            multiple = next((size_multiple_of(r) for r in subset if "args" in r), 1)
            side = largest_fitting_side(subset, fit_gib, multiple) if subset else None
            if side:
                rows.append(f"- {net}{' --grad_checkpoint' if ckpt else ''}: largest square side within {fit_gib:g} GiB "
                            f"about {side} px (extrapolated, linear in pixels through the two largest sizes)")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names of CONFIGS")
    parser.add_argument("--sizes", default="256,512,1024", help="square sides in px")
    parser.add_argument("--steps", type=int, default=2, help="training steps per configuration")
    parser.add_argument("--limit_gib", type=float, default=10.0, help="stop a configuration whose RSS passes this")
    parser.add_argument("--fit_gib", type=float, default=24.0, help="memory the extrapolated largest size must fit")
    parser.add_argument("--timeout_s", type=float, default=600.0, help="stop a configuration that runs longer")
    parser.add_argument("--out", default=None, help="JSON lines file to append to")
    parser.add_argument("--table_from", default=None, help="only print the table of this JSON lines file")
    parser.add_argument("--saved_tensors", action="store_true",
                        help="instead of training steps: the MiB G keeps for its backward, per configuration")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if args.table_from:
        lines = Path(args.table_from).read_text().splitlines()
        print(table([json.loads(line) for line in lines if line.strip()], args.fit_gib))
        return
    if args.saved_tensors:
        for net in args.configs.split(","):
            for side in (int(s) for s in args.sizes.split(",")):
                for ckpt in (False, True):
                    record = saved_for_backward_mib({"netG": net, "side": side, "grad_checkpoint": ckpt})
                    print(json.dumps(record), flush=True)
                    if args.out:
                        with open(args.out, "a") as f:
                            f.write(json.dumps(record) + "\n")
        return
    records = []
    for net in args.configs.split(","):
        for side in (int(s) for s in args.sizes.split(",")):
            for ckpt in (False, True):
                record = measure({"netG": net, "side": side, "grad_checkpoint": ckpt, "steps": args.steps},
                                 args.limit_gib, args.timeout_s)
                records.append(record)
                print(json.dumps({k: v for k, v in record.items() if k not in ("machine", "args")}), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(record) + "\n")
    print(table(records, args.fit_gib))


if __name__ == "__main__":
    main()
