"""``--dataset_mode shards``: a shard set (datasets/make_shards.py) read from a folder or a URL.

``--dataroot`` is the folder or URL that holds ``<phase>.json``. The samples come out exactly
as the dataset the shards were made from gives them: that dataset's class builds them (its
decoder, its checks, its augmentation), only its files come from the shards.

The shards are read with wids (from the ``webdataset`` package): indexed random access to
the samples of tar shards. Random access is what keeps the project's own sampler
(data/loader.py) in charge: the order of an epoch, its split over DDP ranks and loader
workers, and an exact mid-epoch resume are the same as for a folder. A remote shard is
downloaded whole, once, into ``shard_cache`` (wids fetches it with curl) and then read from
there; a local shard is read in place. Over HTTP(S) the index and the shards are fetched here
rather than by wids (whose curl saves an error page as if it were the file): an error status
stops with one line naming the URL and the status, and nothing is cached. A download must have
the index's size (else the Content-Length) and, for an index of version 3, its sha256, or it is
tried again and then refused; a cached copy is checked against the index of each run, so a set
rewritten at the same URL is fetched again.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import logging
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from wids import ShardListDataset
from wids.wids_dl import ULockFile
from wids.wids_specs import load_remote_dsdesc_raw, resolve_dsdesc, urldir

from data.config import DataConfig, is_url
from data.image_io import DataError, ImageBlob
from data.image_store import Decoder, HeaderCheck
from data.packed import PackedSamples
from data.registry import DATASETS
from data.shard_format import DIGEST, READABLE_VERSIONS, SECTION, ShardLayout, file_digest, index_name, shard_layouts
from util.errors import OptionError, first_line

logger = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 60   # seconds without an answer before a fetch gives up
DOWNLOAD_TRIES = 3     # a shard download cut short is tried this many times in all
RETRY_PAUSE_S = 1.0    # before the second try; doubled before each further one
CHUNK_BYTES = 1 << 20

# Open shards kept per process; wids warns above 200 (each holds a file and a memory map).
MAX_OPEN_SHARDS = 200


def index_location(dataroot: Path | str, phase: str) -> str:
    if is_url(dataroot):
        return f"{str(dataroot).rstrip('/')}/{index_name(phase)}"
    return str(Path(dataroot).resolve() / index_name(phase))


def load_index(cfg: DataConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the pix2pix section, the shard list with resolved URLs) of ``dataroot/<phase>.json``."""
    where = index_location(cfg.dataroot, cfg.phase)
    if not is_url(where) and not Path(where).is_file():
        raise DataError(f"{where}: no shard index (make one with datasets/make_shards.py)")
    try:
        if _is_http(where):
            with _fetched(where) as answer:
                description = json.loads(answer.read())
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                description = load_remote_dsdesc_raw(where)
        shards = resolve_dsdesc(description, base=urldir(where))["shardlist"]
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - a failed download, bad JSON or a bad description
        raise DataError(f"{where}: cannot read the shard index ({first_line(err)})") from None
    meta = description.get(SECTION)
    if not isinstance(meta, dict) or meta.get("format_version") not in READABLE_VERSIONS:
        found = meta.get("format_version") if isinstance(meta, dict) else None
        raise DataError(f"{where}: not a pix2pix shard index this version reads (format version {found}; "
                        f"it reads {', '.join(map(str, READABLE_VERSIONS))})")
    total = sum(shard["nsamples"] for shard in shards)
    if len(meta.get("names", ())) != total:
        raise DataError(f"{where}: the index lists {len(meta.get('names', ()))} names for {total} samples")
    sizes = meta.get("sizes")
    if sizes is not None and (len(sizes) != total or not all(isinstance(s, list) and len(s) == 2 for s in sizes)):
        raise DataError(f"{where}: the index's sizes are not one (height, width) for each of its {total} samples")
    for shard in shards:
        digest = shard.get(DIGEST)
        if meta["format_version"] >= 3 and not (isinstance(digest, str) and len(digest) == 64):
            raise DataError(f"{where}: shard {shard['url']} has no {DIGEST} digest, which a version-3 index records")
        _check_local_shard(shard, where)
    return meta, shards


def _check_local_shard(shard: dict[str, Any], where: str) -> None:
    """A local shard must be there at the size the index records (a remote one is checked as it
    is cached, by :class:`ShardFiles`): a shard cut short or rewritten after the index would
    otherwise fail mid-training, or give other samples than the index names."""
    if is_url(shard["url"]):
        return
    path = Path(shard["url"])
    if not path.is_file():
        raise DataError(f"{path}: missing (listed in {where})")
    size, recorded = path.stat().st_size, shard.get("filesize")
    if recorded is not None and size != recorded:
        raise DataError(f"{path}: {size} bytes, but {where} records {recorded}; the shard is damaged or "
                        "was rewritten after the index (make the shard set again)")


class FetchError(DataError):
    """A shard that could not be fetched whole: nothing is wrong with any one image file."""

    remedy = "check the shard server and the set on it; the shard is fetched anew when the run goes on"


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _fetched(url: str) -> Any:
    """The open answer to a GET of ``url``; an error status or no answer is a one-line DataError."""
    try:
        return urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise FetchError(f"{url}: HTTP error {err.code} ({err.reason})") from None
    except OSError as err:   # URLError (no server, refused) included
        raise FetchError(f"{url}: cannot be fetched ({getattr(err, 'reason', None) or first_line(err)})") from None


@dataclass(frozen=True)
class ShardRecord:
    """What the index says a shard's bytes are (None: an older index that does not say)."""
    filesize: int | None = None
    sha256: str | None = None   # since index version 3


def download(url: str, local: Path, record: ShardRecord = ShardRecord()) -> None:
    """Fetch ``url`` into ``local``, which appears only once complete and as the index records
    it (a temporary file beside it is renamed): an error status, a download cut short or one
    with another digest leaves nothing behind to be taken for the shard. A download cut short
    is tried again (``DOWNLOAD_TRIES`` in all); the others fail at once, since they would come
    back the same."""
    partial_file = local.with_name(f".{local.name}.{os.getpid()}.partial")
    try:
        for attempt in range(1, DOWNLOAD_TRIES + 1):
            received, wanted, digest = _fetch_into(url, partial_file, record.filesize)
            if wanted is None or received >= wanted:
                break
            if attempt == DOWNLOAD_TRIES:
                raise FetchError(f"{url}: download cut short ({received} of {wanted} bytes, {DOWNLOAD_TRIES} tries)")
            logger.warning("%s: download cut short (%d of %d bytes); trying again", url, received, wanted)
            time.sleep(RETRY_PAUSE_S * 2 ** (attempt - 1))
        if record.filesize is not None and received != record.filesize:
            raise FetchError(f"{url}: {received} bytes downloaded, but the index records {record.filesize}; "
                            "the shard was rewritten after its index (make the shard set again)")
        if record.sha256 is not None and digest != record.sha256:
            raise FetchError(f"{url}: digest mismatch (the download's {DIGEST} is {digest[:16]}..., the index "
                            f"records {record.sha256[:16]}...); the shard was rewritten after its index, "
                            "or the server sends something else")
        os.replace(partial_file, local)
        _remember_digest(local, digest)
    except OSError as err:
        raise FetchError(f"{url}: cannot be fetched ({first_line(err)})") from None
    finally:
        partial_file.unlink(missing_ok=True)


def _fetch_into(url: str, path: Path, filesize: int | None) -> tuple[int, int | None, str]:
    """(bytes received, bytes expected: the index's size, else the Content-Length, else None, and
    the hex digest of what was received). A connection lost mid-body counts as cut short:
    http.client itself does not raise when a body ends early."""
    received, digest = 0, hashlib.new(DIGEST)
    with _fetched(url) as answer, open(path, "wb") as out:
        length = answer.headers.get("Content-Length")
        announced = int(length) if length is not None and length.isdigit() else None
        with contextlib.suppress(http.client.IncompleteRead, ConnectionError, TimeoutError):
            while chunk := answer.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
    known = [size for size in (filesize, announced) if size is not None]
    return received, max(known) if known else None, digest.hexdigest()


def _verified_name(local: Path) -> Path:
    return local.with_name(f"{local.name}.verified")


def _remember_digest(local: Path, digest: str) -> None:
    """Note ``local``'s digest beside it, keyed by its size and mtime, so that the next check of
    the copy (each process, each run) does not read the whole shard again."""
    stat = local.stat()
    note = _verified_name(local)
    temporary = note.with_name(f".{note.name}.{os.getpid()}")
    temporary.write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, DIGEST: digest}))
    os.replace(temporary, note)


def _digest_of(local: Path) -> str:
    stat = local.stat()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        note = json.loads(_verified_name(local).read_text())
        if note["size"] == stat.st_size and note["mtime_ns"] == stat.st_mtime_ns:
            return str(note[DIGEST])
    digest = file_digest(local)
    _remember_digest(local, digest)
    return digest


def cached_copy_is_current(local: Path, record: ShardRecord) -> bool:
    """Whether the cached ``local`` is the shard the index describes: its digest where the index
    records one (version 3), else only its size (versions 1 and 2: a set rewritten at the same
    URL with shards of the same size goes unnoticed)."""
    if record.filesize is not None and local.stat().st_size != record.filesize:
        return False
    return record.sha256 is None or _digest_of(local) == record.sha256


class ShardFiles:
    """wids' ``localname``: where the local copy of a shard lives.

    A remote shard is downloaded to ``cache_dir``, under a name that includes a hash of its
    folder's URL (two sets may both have ``train-000000.tar``). wids downloads only what is not
    there yet, so a copy that is not the index's shard (cut short, an error page, or a set
    rewritten at the same URL: see :func:`cached_copy_is_current`) is removed first. A local
    shard gets a link there instead of a copy: wids takes a lock file beside the local name, and
    the shard's own folder may be read-only.
    """

    def __init__(self, cache_dir: Path, records: dict[str, ShardRecord]) -> None:
        self.cache_dir = cache_dir
        self.records = records    # url -> what the index says of its bytes
        cache_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, url: str) -> str:
        digest = hashlib.sha256(urldir(url).encode()).hexdigest()[:16]
        local = self.cache_dir / f"{digest}__{os.path.basename(url)}"
        if not is_url(url):
            with contextlib.suppress(FileExistsError):   # another worker linked it first
                local.symlink_to(Path(url).resolve())
        else:
            # Under wids' own download lock, so that a copy another worker is still writing is
            # not taken for a bad one.
            with ULockFile(f"{local}.lock"):
                record = self.records.get(url, ShardRecord())
                if local.exists() and not cached_copy_is_current(local, record):
                    local.unlink()
                    _verified_name(local).unlink(missing_ok=True)
                if _is_http(url) and not local.exists():
                    download(url, local, record)   # wids then finds the copy; other schemes it fetches itself
        return str(local)


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"pix2pix_shards_{os.getuid()}"


def usable_cache_dir(shard_cache: Path | None) -> Path:
    """The shard cache folder, created if need be, once it is known to be a writable folder: a
    local set needs it too (its links), and a bad one would otherwise show at the first sample
    as an error about a shard."""
    folder = shard_cache or default_cache_dir()
    option = f"--shard_cache {folder}" if shard_cache is not None else \
        f"{folder} (the default --shard_cache)"
    if folder.exists() and not folder.is_dir():
        raise OptionError(f"{option}: not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OptionError(f"{option}: cannot be created ({err.strerror or first_line(err)})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OptionError(f"{option}: not writable")
    return folder


class ShardStore:
    """What :class:`data.image_store.ImageStore` is to a folder, for a shard set: ``paths`` (each
    sample's original name), ``sizes`` (each sample's stored (height, width); None for an index
    of format 1, which has none, and then ``no_sizes`` says so), ``len`` and ``load(index)``."""

    def __init__(self, shards: list[dict[str, Any]], names: list[str], layout: ShardLayout,
                 decode: Decoder, check: HeaderCheck, *, cache_dir: Path, skip_bad: bool = False,
                 cache: bool = False, limit: int | None = None, sizes: list[list[int]] | None = None,
                 index: str = "the shard index") -> None:
        self._shards = shards
        self._names = names
        self._layout = layout
        self._decode = decode
        self._check = check
        self._cache_dir = cache_dir
        self._records = {shard["url"]: ShardRecord(shard.get("filesize"), shard.get(DIGEST)) for shard in shards}
        self.no_sizes = (f"{index}: a version-1 shard index records no image sizes (remake the shard set "
                         "with datasets/make_shards.py to record them)")
        self._reader: ShardListDataset | None = None
        self._reader_pid = -1
        total = len(names)
        wanted = total if limit is None else min(limit, total)
        self._indices: list[int] = []
        decoded: list[tuple[torch.Tensor, ...]] = []
        # As for folders: with skip_bad or cache, every sample is decoded once up front.
        for index in range(total):
            if len(self._indices) >= wanted:
                break
            try:
                sample = self._load_from_shards(index) if (cache or skip_bad) else ()
            except DataError as err:
                if not skip_bad:
                    raise
                logger.warning("skipping bad sample: %s", err)
                continue
            self._indices.append(index)
            if cache:
                decoded.append(sample)
        if not self._indices:
            raise DataError(f"{shards[0]['url']}: no usable samples in the shard set")
        self.paths = [names[i] for i in self._indices]
        self.sizes: list[tuple[int, int]] | None = (
            None if sizes is None else [(int(sizes[i][0]), int(sizes[i][1])) for i in self._indices])
        self._packed = PackedSamples(decoded) if cache else None

    def __len__(self) -> int:
        return len(self._indices)

    def load(self, index: int) -> tuple[torch.Tensor, ...]:
        if self._packed is not None:
            return self._packed[index]
        return self._load_from_shards(self._indices[index])

    def reader(self) -> ShardListDataset:
        # Opened shards (file handles, memory maps) are not shared with forked loader workers:
        # each process opens its own on first use.
        if self._reader is None or self._reader_pid != os.getpid():
            with contextlib.redirect_stderr(io.StringIO()):   # wids prints a summary line on creation
                self._reader = ShardListDataset(
                    self._shards, localname=ShardFiles(self._cache_dir, self._records), transformations=[],
                    lru_size=min(len(self._shards), MAX_OPEN_SHARDS))
            self._reader_pid = os.getpid()
        return self._reader

    def _load_from_shards(self, index: int) -> tuple[torch.Tensor, ...]:
        members = self.members(index)
        try:
            for blob in members.values():
                self._check(blob, *blob.size())
            return self._layout.decode(self._decode, members)
        except DataError as err:
            # The member (train-000000.tar:00000006.image.jpg) says where the bytes are; the
            # sample's original name is what the user can find and fix.
            raise DataError(f"{self._names[index]}: {err}") from None

    def members(self, index: int) -> dict[str, ImageBlob]:
        """The stored files of sample ``index`` of the shard set, by field."""
        try:
            sample = self.reader()[index]
        except DataError:
            raise   # a failed download: it names the URL
        except Exception as err:  # noqa: BLE001 - a failed download or a damaged tar
            raise DataError(f"{self._shard_of(index)}: cannot read sample {index} "
                            f"({first_line(err)})") from None
        members: dict[str, ImageBlob] = {}
        for name, value in sample.items():
            if name.startswith("__"):
                continue
            field = name.lstrip(".").split(".")[0]
            members[field] = ImageBlob(f"{sample['__shard__']}:{sample['__key__']}{name}", value.getvalue())
        return members

    def _shard_of(self, index: int) -> str:
        for shard in self._shards:
            if index < shard["nsamples"]:
                return shard["url"]
            index -= shard["nsamples"]
        return self._shards[-1]["url"]

    def __getstate__(self) -> dict[str, Any]:
        # A spawned worker opens its own shards.
        return {**self.__dict__, "_reader": None, "_reader_pid": -1}


def ShardDataset(cfg: DataConfig) -> Dataset:
    """The dataset the shard set was made from, reading its files from the shards."""
    cache_dir = usable_cache_dir(cfg.shard_cache)
    meta, shards = load_index(cfg)
    mode = meta["dataset_mode"]
    layouts = shard_layouts()
    if mode not in layouts:
        raise DataError(f"{index_location(cfg.dataroot, cfg.phase)}: made from --dataset_mode {mode}, "
                        f"which this version cannot read (it reads {', '.join(layouts)})")
    store = partial(ShardStore, shards, meta["names"], layouts[mode], cache_dir=cache_dir,
                    skip_bad=cfg.skip_bad_images, cache=cfg.cache, limit=cfg.max_dataset_size,
                    sizes=meta.get("sizes"), index=index_location(cfg.dataroot, cfg.phase))
    return DATASETS.get(mode)(cfg, store=store)
