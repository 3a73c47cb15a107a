"""The runtime (device, rank, world size) and the process group behind it.

The driver builds one :class:`Runtime` with :func:`distributed_runtime` and passes it down.
Whether this process is one of several comes from the environment that a launcher sets:
torchrun, or :mod:`engine.launch` for ``train.py --nproc N`` (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT). This is the only file that reads those variables.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from util.errors import UserError, first_line

log = logging.getLogger(__name__)

# Long enough for rank 0 to write a checkpoint or a page while the others wait at a barrier,
# short enough that a rank stuck in a collective (a peer died without its launcher noticing)
# ends the job instead of hanging it for good. torch's own default for gloo is 30 minutes.
DEFAULT_TIMEOUT_S = 600.0


# torch 2.14 renamed DDP's per-forward buffer broadcast; older releases know only the old name.
_SYNC_BUFFERS_ARG = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                     else "broadcast_buffers")


class DistributedError(UserError, RuntimeError):
    """The process group could not be formed, or this process lost contact with its peers."""


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def label(self) -> str:
        """' (rank 1)' in a multi-process job, '' otherwise: for one-line error messages."""
        return f" (rank {self.rank})" if self.distributed else ""


@dataclass(frozen=True)
class LaunchEnv:
    """What the launcher told this process about its place in the job."""
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def launch_env(environ: Mapping[str, str] | None = None) -> LaunchEnv | None:
    """The job layout from RANK/WORLD_SIZE/LOCAL_RANK, or None when no launcher set them."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    try:
        world_size, rank = int(env["WORLD_SIZE"]), int(env["RANK"])
        local_rank = int(env.get("LOCAL_RANK", rank))
        local_world_size = int(env.get("LOCAL_WORLD_SIZE", world_size))
    except ValueError:
        raise DistributedError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be integers, got "
                               f"{env.get('RANK')!r}, {env.get('WORLD_SIZE')!r}, {env.get('LOCAL_RANK')!r}, "
                               f"{env.get('LOCAL_WORLD_SIZE')!r}") from None
    if not 0 <= rank < world_size or not 0 <= local_rank < local_world_size:
        raise DistributedError(f"RANK {rank} / WORLD_SIZE {world_size} (LOCAL_RANK {local_rank} / "
                               f"LOCAL_WORLD_SIZE {local_world_size}) is not a valid place in a job")
    return LaunchEnv(rank, world_size, local_rank, local_world_size)


def single_process_runtime(gpu_ids: list[int]) -> Runtime:
    device = torch.device(f"cuda:{gpu_ids[0]}") if gpu_ids else torch.device("cpu")
    return Runtime(device=device)


def process_device(gpu_ids: list[int], local_rank: int, local_world_size: int) -> torch.device:
    """CPU without GPU ids; else ``gpu_ids[local_rank]`` when one id per local process was
    given (``--gpu_ids 2,3``), else the torchrun convention ``cuda:<local_rank>``."""
    if not gpu_ids:
        return torch.device("cpu")
    if len(gpu_ids) >= local_world_size:
        return torch.device(f"cuda:{gpu_ids[local_rank]}")
    return torch.device(f"cuda:{local_rank}")


def attempt_store(env: LaunchEnv, timeout_s: float) -> dist.Store | None:
    """Under torchrun, a store of this attempt's own; None elsewhere (the usual env:// store).

    After a restart (``--max_restarts``) torchrun's workers meet in the agent's store again,
    where the previous attempt's keys are still there: a rank that starts early reads the
    dead rank 0's gloo address and fails to connect (seen with torch 2.14 on a loaded CPU).
    A prefix per attempt (TORCHELASTIC_RESTART_COUNT) keeps each attempt's keys apart."""
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None:
        return None
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True)
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), env.world_size,
                          is_master=env.rank == 0 and not agent_hosts_it, timeout=timedelta(seconds=timeout_s))
    return dist.PrefixStore(f"pix2pix/attempt_{attempt}", store)


@contextmanager
def distributed_runtime(gpu_ids: list[int], timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Runtime]:
    """The runtime of this process; inside a launched job of several processes, with the
    default process group formed (nccl on CUDA, gloo on CPU) and destroyed on the way out,
    whether training ended or raised."""
    env = launch_env()
    if env is None or env.world_size == 1:
        yield single_process_runtime(gpu_ids)
        return
    device = process_device(gpu_ids, env.local_rank, env.local_world_size)
    if device.type == "cuda":
        if device.index >= torch.cuda.device_count():
            raise DistributedError(f"local rank {env.local_rank} wants {device} but this machine has "
                                   f"{torch.cuda.device_count()} GPU(s); check --gpu_ids and --nproc_per_node")
        torch.cuda.set_device(device)  # before any collective: nccl binds each rank to its GPU
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, rank=env.rank, world_size=env.world_size,
                                timeout=timedelta(seconds=timeout_s), store=attempt_store(env, timeout_s))
    except (dist.DistError, RuntimeError, ValueError) as err:
        raise DistributedError(f"rank {env.rank} could not join the {backend} process group of "
                               f"{env.world_size} at {os.environ.get('MASTER_ADDR', '?')}:"
                               f"{os.environ.get('MASTER_PORT', '?')} ({first_line(err)})") from None
    log.debug("rank %d/%d on %s joined the %s group", env.rank, env.world_size, device, backend)
    try:
        yield Runtime(device=device, rank=env.rank, world_size=env.world_size, local_rank=env.local_rank)
    finally:
        dist.destroy_process_group()


def is_peer_failure(err: BaseException) -> bool:
    """Did a collective fail because another process died or stalled? nccl raises DistError;
    gloo raises a plain RuntimeError that names its source file (a timeout, a closed peer)."""
    return isinstance(err, dist.DistError) or (isinstance(err, RuntimeError) and "/gloo/" in str(err))


@contextmanager
def peer_failures_reported() -> Iterator[None]:
    """A collective that failed because another process died or stalled is no bug of this one:
    it leaves as a DistributedError (one line). Any other RuntimeError keeps its traceback."""
    try:
        yield
    except RuntimeError as err:
        if isinstance(err, UserError) or not is_peer_failure(err):
            raise
        raise DistributedError(f"lost contact with the other processes ({first_line(err)})") from err


def barrier(runtime: Runtime) -> None:
    """Wait until every process gets here (no-op in a single process)."""
    if not runtime.distributed:
        return
    if runtime.device.type == "cuda":
        dist.barrier(device_ids=[runtime.device.index])
    else:
        dist.barrier()


def mean_across_ranks(values: Mapping[str, torch.Tensor], runtime: Runtime) -> dict[str, torch.Tensor]:
    """Each value averaged over the processes, in one all-reduce. Every rank must call it
    at the same point with the same keys (dicts keep insertion order, so they line up)."""
    if not runtime.distributed or not values:
        return dict(values)
    stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()]).to(runtime.device)
    dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
    stacked /= runtime.world_size
    return dict(zip(values.keys(), stacked.unbind()))


def any_rank(flag: bool, runtime: Runtime) -> bool:
    """Is ``flag`` true on any process? One number in one all-reduce (max), so that every rank
    takes the same branch where one rank alone met something (a file it could not decode)."""
    if not runtime.distributed:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32, device=runtime.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather_to_all(obj: Any, runtime: Runtime) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (a picklable object per rank)."""
    if not runtime.distributed:
        return [obj]
    out: list[Any] = [None] * runtime.world_size
    dist.all_gather_object(out, obj)
    return out


def weights_digest(nets: Mapping[str, nn.Module]) -> str:
    """A SHA-256 of every parameter's bytes (buffers excluded: plain batch norm's running
    statistics are per process by design)."""
    digest = hashlib.sha256()
    for name, net in nets.items():
        for key, param in unwrap(net).named_parameters():
            digest.update(f"{name}.{key}".encode())
            digest.update(param.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_ranks_agree(nets: Mapping[str, nn.Module], runtime: Runtime) -> str:
    """Do all processes hold bit-identical parameters? DDP promises it; a rank that silently
    drifted (different data types, a missed collective) would otherwise only show up as a
    checkpoint that differs from what the other ranks trained. Returns the common digest."""
    digests = gather_to_all(weights_digest(nets), runtime)
    if len(set(digests)) != 1:
        differing = [r for r, d in enumerate(digests) if d != digests[0]]
        raise DistributedError(f"the processes ended with different weights (rank(s) {differing} differ from rank 0)")
    return digests[0]


def ddp_wrapper(runtime: Runtime, broadcast_buffers: Callable[[nn.Module], bool]
                ) -> Callable[[str, nn.Module], nn.Module]:
    """A ``wrap(name, net)`` for ``model.wrap_networks``: each network in its own DDP, so
    G's and D's gradients are reduced separately, when each one's backward runs."""
    def wrap(name: str, net: nn.Module) -> nn.Module:
        if not runtime.distributed:
            return net
        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=device_ids, **{_SYNC_BUFFERS_ARG: broadcast_buffers(net)})
    return wrap


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP (or compile) wrapper; saving and rank-0 work use this."""
    while True:
        inner = getattr(module, "module", None) or getattr(module, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return module
        module = inner
