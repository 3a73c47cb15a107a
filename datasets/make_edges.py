"""Make a sketch -> photo dataset: aligned edges|photo pairs from a folder of photos.

    python datasets/make_edges.py --input photos/ --output datasets/my_edges --size 256
    python datasets/make_edges.py --input datasets/facades --from_aligned --photo_half A --output out/

Edges come from scikit-image's Canny detector, thickened by a dilation and drawn black on white
by default, like hand sketches and the edges2shoes/edges2handbags sets (`--no-invert` keeps
Canny's white lines on black). Each output image holds the edges on the left (A) and the photo
on the right (B), so `--direction AtoB` trains sketch -> photo.

Layout: subfolders of --input (train, val, test, ...) are mirrored under --output; a flat
folder of photos becomes the single split --split (default train). Outputs are PNG unless
--format jpg, named after the photo; photos of one stem (`a.jpg`, `a.png`) are told apart as
translate.py tells them apart (`a.png`, `a_png.png`), so no result replaces another.

Runs as a script once the project is installed (`pip install -e .`, which install.sh does), or
from the project root as `python -m datasets.make_edges`. Photos are decoded to 8-bit RGB by the
loader's own converter (data/image_io.py: 16-bit scaled and rounded, transparency onto white).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.color import rgb2gray
from skimage.feature import canny

from data.image_io import IMAGE_EXTENSIONS, DataError, to_mode
from data.pixels import open_eight_bit_as
from reporting.results_layout import ResultNames
from util.errors import UserError

# use_quantiles -> (low, high). Absolute ones are scikit-image's own defaults; the quantile ones
# keep the strongest 10-20 % of gradients, which adapts to low-contrast photos.
DEFAULT_THRESHOLDS = {False: (0.1, 0.2), True: (0.8, 0.9)}
FORMATS = {"png": (".png", {}), "jpg": (".jpg", {"quality": 95})}


class EdgesError(UserError):
    """Bad input; the message is one line that names the file, folder or option."""


@dataclass(frozen=True)
class EdgeSettings:
    sigma: float = 2.0                    # Gaussian blur before the gradient, px
    low_threshold: float | None = None    # hysteresis thresholds on the gradient of a [0, 1] image;
    high_threshold: float | None = None   # None: DEFAULT_THRESHOLDS for the mode
    use_quantiles: bool = False           # read the thresholds as quantiles of the gradient instead
    thickness: int = 2                    # line width in px after dilation
    invert: bool = True                   # black lines on white

    def thresholds(self) -> tuple[float, float]:
        """(low, high) with defaults filled in; raises EdgesError when they are unusable."""
        default_low, default_high = DEFAULT_THRESHOLDS[self.use_quantiles]
        low = default_low if self.low_threshold is None else self.low_threshold
        high = default_high if self.high_threshold is None else self.high_threshold
        if self.use_quantiles and not (0 <= low <= 1 and 0 <= high <= 1):
            raise EdgesError("with --use_quantiles, --low_threshold and --high_threshold must be between 0 and 1")
        if low > high:
            raise EdgesError(f"--low_threshold {low} is above --high_threshold {high}")
        return low, high


def _disc(diameter: int) -> np.ndarray:
    offsets = np.arange(diameter) - (diameter - 1) / 2
    return np.hypot(*np.meshgrid(offsets, offsets)) <= diameter / 2


def detect_edges(photo: Image.Image, settings: EdgeSettings) -> Image.Image:
    """An RGB edge drawing of the same size as `photo`."""
    gray = rgb2gray(np.asarray(to_mode(photo, "RGB"), dtype=np.float64) / 255.0)
    # 'nearest' padding blurs the border against itself rather than against black.
    low, high = settings.thresholds()
    edges = canny(gray, sigma=settings.sigma, low_threshold=low, high_threshold=high,
                  use_quantiles=settings.use_quantiles, mode="nearest")
    if settings.thickness > 1:
        edges = ndimage.binary_dilation(edges, structure=_disc(settings.thickness))
    ink = edges if settings.invert else ~edges
    pixels = np.where(ink, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="L").convert("RGB")


def aligned_pair(edges: Image.Image, photo: Image.Image) -> Image.Image:
    """Edges (A) on the left, photo (B) on the right."""
    width, height = photo.size
    pair = Image.new("RGB", (2 * width, height))
    pair.paste(edges, (0, 0))
    pair.paste(photo, (width, 0))
    return pair


def load_photo(path: Path, from_aligned: bool = False, photo_half: str = "B",
               size: int | None = None) -> Image.Image:
    """The photo to draw: the whole file, or one half of an aligned A|B image; resized if asked."""
    try:
        photo = open_eight_bit_as(path, "RGB")
    except DataError as error:   # the message starts with the file's path
        raise EdgesError(str(error)) from None
    if from_aligned:
        width, height = photo.size
        if width % 2:
            raise EdgesError(f"{path} is {width}x{height}: an odd width cannot be an aligned A|B image")
        left = 0 if photo_half == "A" else width // 2
        photo = photo.crop((left, 0, left + width // 2, height))
    if size is not None:
        photo = photo.resize((size, size), Image.Resampling.BICUBIC)
    return photo


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def find_splits(input_dir: Path, default_split: str) -> dict[str, Path]:
    """Output split name -> input folder."""
    if not input_dir.is_dir():
        raise EdgesError(f"--input {input_dir} is not a folder")
    subfolders = sorted(p for p in input_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders and _images(input_dir):
        raise EdgesError(f"{input_dir} holds both images and subfolders; put all images into split "
                         "subfolders, or none")
    splits = {p.name: p for p in subfolders} if subfolders else {default_split: input_dir}
    empty = [str(folder) for folder in splits.values() if not _images(folder)]
    if empty:
        raise EdgesError(f"no images in {', '.join(empty)}")
    return splits


def make_edges_dataset(input_dir: Path, output_dir: Path, settings: EdgeSettings, *,
                       from_aligned: bool = False, photo_half: str = "B", size: int | None = None,
                       split: str = "train", image_format: str = "png",
                       progress: Callable[[str, int], None] | None = None) -> int:
    """Write edges|photo pairs for every photo; return how many. Raises EdgesError on bad input."""
    suffix, save_options = FORMATS[image_format]
    settings.thresholds()   # fail on bad thresholds before reading any image
    count = 0
    for split_name, folder in find_splits(Path(input_dir), split).items():
        target = Path(output_dir) / split_name
        target.mkdir(parents=True, exist_ok=True)
        photos = _images(folder)
        names = ResultNames()   # a.jpg -> a.png, a.png -> a_png.png: translate.py's rule
        for path in photos:
            photo = load_photo(path, from_aligned, photo_half, size)
            aligned_pair(detect_edges(photo, settings), photo).save(target / f"{names.name_for(path.name)}{suffix}",
                                                                   **save_options)
        count += len(photos)
        if progress is not None:
            progress(split_name, len(photos))
    return count


def _number(kind: type, minimum: float, maximum: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a{'n integer' if kind is int else ' number'}, "
                                             f"got '{text}'") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Turn photos into aligned edges|photo pairs (a sketch -> photo dataset).")
    parser.add_argument("--input", type=Path, required=True,
                        help="folder of photos, or of split subfolders (train, val, test)")
    parser.add_argument("--output", type=Path, required=True, help="dataset folder to write")
    parser.add_argument("--from_aligned", action="store_true",
                        help="the inputs are aligned A|B images; draw one half (see --photo_half)")
    parser.add_argument("--photo_half", choices=("A", "B"), default="B",
                        help="with --from_aligned, the half that holds the photo (default: %(default)s)")
    parser.add_argument("--split", default="train",
                        help="split name for a flat --input folder (default: %(default)s)")
    parser.add_argument("--size", type=_number(int, 8), default=None,
                        help="resize photos to SIZE x SIZE first (default: keep their size)")
    parser.add_argument("--sigma", type=_number(float, 0.0), default=EdgeSettings.sigma,
                        help="Gaussian smoothing before Canny, px; larger = fewer, smoother lines "
                             "(default: %(default)s)")
    parser.add_argument("--low_threshold", type=_number(float, 0.0), default=None,
                        help="Canny hysteresis low threshold, on the gradient of a [0, 1] image "
                             "(default: 0.1, or 0.8 with --use_quantiles)")
    parser.add_argument("--high_threshold", type=_number(float, 0.0), default=None,
                        help="Canny hysteresis high threshold (default: 0.2, or 0.9 with --use_quantiles)")
    parser.add_argument("--use_quantiles", action="store_true",
                        help="read the thresholds as quantiles (0-1) of each image's gradient, which "
                             "adapts to contrast; e.g. --low_threshold 0.8 --high_threshold 0.9")
    parser.add_argument("--thickness", type=_number(int, 1, 15), default=EdgeSettings.thickness,
                        help="line width in px (default: %(default)s)")
    parser.add_argument("--invert", action=argparse.BooleanOptionalAction, default=True,
                        help="black lines on white like a hand sketch (default); --no-invert: white on black")
    parser.add_argument("--format", choices=sorted(FORMATS), default="png",
                        help="output image format (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = EdgeSettings(args.sigma, args.low_threshold, args.high_threshold, args.use_quantiles,
                            args.thickness, args.invert)
    try:
        count = make_edges_dataset(args.input, args.output, settings, from_aligned=args.from_aligned,
                                   photo_half=args.photo_half, size=args.size, split=args.split,
                                   image_format=args.format,
                                   progress=lambda split, n: print(f"{split}: {n} pairs"))
    except EdgesError as error:
        print(f"make_edges: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:   # e.g. an unwritable --output
        print(f"make_edges: error: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {count} edges|photo pairs to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
