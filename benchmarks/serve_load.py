"""serve.py under load: N concurrent clients on loopback send strokes and uploads through the
HTTP API the page uses (gradio's client: upload, queue, translate, download).

    python benchmarks/serve_load.py                     # 1, 4, 16 clients, then 1,000 requests
    python benchmarks/serve_load.py --clients 1,4 --requests 24 --memory_requests 200

A tiny generator is trained first (resnet_6blocks, ngf/ndf 8, 32 px pairs, 20 steps) so that
the run takes minutes. Inputs: canvases with a few random strokes (256 px, as the page's canvas
sends them) and photos uploaded as files (the facades fixtures, 256 x 512). Per N: p50/p99
latency of the answered requests, the requests refused because the queue was full (serve.py's
--max_queue, the message the client got), errors, and answers unlike the same request served
alone (every request is seeded, so each answer must equal it byte for byte). Then
--memory_requests requests from --memory_clients clients while the server's resident memory
(VmRSS from /proc) is sampled. Nothing listens beyond 127.0.0.1.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import ROOT, emit, load_average
from benchmarks.fault_runs import write_pairs
from benchmarks.serve_clients import Outcome, client_temp_folder, rss_mib, run_clients, serial_outputs, serve, stroke_canvas, summary

FACADES = ROOT / "tests" / "fixtures" / "facades" / "test"


def train_tiny_generator(work: Path, steps: int = 20) -> Path:
    pairs = write_pairs(work / "pairs")
    ckpt = work / "ck"
    cmd = [sys.executable, str(ROOT / "train.py"), "--dataroot", str(pairs), "--checkpoints_dir", str(ckpt),
           "--name", "tiny", "--gpu_ids", "-1", "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8",
           "--preprocess", "none", "--load_size", "32", "--crop_size", "32", "--batch_size", "2",
           "--num_threads", "0", "--display_id", "0", "--no_html", "--amp", "none", "--max_steps", str(steps)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"serve_load.py: training the tiny generator failed:\n{done.stderr[-2000:]}")
    return ckpt


def page_inputs(work: Path, strokes: int = 6) -> list[Path]:
    (work / "inputs").mkdir()
    canvases = [stroke_canvas(work / "inputs" / f"strokes_{i}.png", seed=i) for i in range(strokes)]
    return canvases + sorted(FACADES.glob("*.jpg"))[:2]


def memory_run(url: str, pid: int, inputs: list[Path], clients: int, requests: int, downloads: Path,
               every_s: float = 0.5) -> tuple[list[Outcome], list[tuple[int, float]]]:
    """``requests`` requests while a thread samples the server's RSS: (summary, [(done, MiB)])."""
    progress, samples, stop = [0], [(0, rss_mib(pid))], threading.Event()

    def sample() -> None:
        while not stop.wait(every_s):
            samples.append((progress[0], rss_mib(pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    outcomes = run_clients(url, inputs, clients, requests // clients, downloads, deadline_s=1800, progress=progress)
    stop.set()
    sampler.join()
    samples.append((progress[0], rss_mib(pid)))
    return outcomes, samples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", default="1,4,16", help="comma-separated numbers of concurrent clients")
    p.add_argument("--requests", type=int, default=48, help="requests per client count (split among the clients)")
    p.add_argument("--memory_requests", type=int, default=1000)
    p.add_argument("--memory_clients", type=int, default=4)
    p.add_argument("--max_queue", type=int, default=8, help="serve.py --max_queue")
    p.add_argument("--deadline_s", type=float, default=600, help="per client count: later requests are not sent")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve_load_cpu_amx.jsonl"))
    args = p.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        work = Path(tmp)
        ckpt = train_tiny_generator(work)
        inputs = page_inputs(work)
        with client_temp_folder(work / "client_tmp"), \
                serve(ckpt, "tiny", work, "--max_queue", str(args.max_queue)) as served:
            expected = serial_outputs(served.url, inputs, work / "dl")
            for clients in (int(n) for n in args.clients.split(",")):
                started = time.monotonic()
                outcomes = run_clients(served.url, inputs, clients, max(1, args.requests // clients), work / "dl",
                                       deadline_s=args.deadline_s)
                record = {"bench": "serve_load", "clients": clients, "max_queue": args.max_queue,
                          **summary(outcomes, expected), "seconds": round(time.monotonic() - started, 1),
                          "server_rss_mib": round(rss_mib(served.pid), 1), "load_average": load_average()}
                failed |= bool(record["wrong_outputs"] or record["errors"])
                emit([record], args.out)
            if args.memory_requests:
                started = time.monotonic()
                outcomes, samples = memory_run(served.url, served.pid, inputs, args.memory_clients,
                                               args.memory_requests, work / "dl")
                after_100 = next(mib for done, mib in samples if done >= 100)
                record = {"bench": "serve_load_memory", "clients": args.memory_clients, **summary(outcomes, expected),
                          "rss_mib_start": round(samples[0][1], 1), "rss_mib_after_100": round(after_100, 1),
                          "rss_mib_end": round(samples[-1][1], 1),
                          "rss_change_after_100_pct": round(100 * (samples[-1][1] / after_100 - 1), 2),
                          "rss_mib_max": round(max(m for _, m in samples), 1),
                          "rss_every_100": [round(next(m for d, m in samples if d >= k), 1)
                                            for k in range(100, samples[-1][0] + 1, 100)],
                          "seconds": round(time.monotonic() - started, 1), "load_average": load_average()}
                failed |= bool(record["wrong_outputs"] or record["errors"])
                emit([record], args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
