"""FID and KID of any two folders of images, offline (reporting/fid.py).

    python benchmarks/fid_folders.py REAL_FOLDER FAKE_FOLDER
    python benchmarks/fid_folders.py results/facades/test_latest/images results/facades/test_latest/images \
        --real_glob '*_real_B.png' --fake_glob '*_fake_B.png'

Prints one JSON line: FID, KID (mean and std over subsets, with the subset size and count)
and the image counts. Images of any size are resized to 299 px as reporting/fid.py states.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from data.image_io import has_image_extension
from reporting.fid import FidUnavailable, score_folders


def images_in(folder: Path, pattern: str) -> list[Path]:
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    found = sorted(p for p in folder.glob(pattern) if has_image_extension(p))
    if len(found) < 2:
        raise ValueError(f"{folder}: FID/KID need at least 2 images matching '{pattern}', found {len(found)}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("real", type=Path)
    p.add_argument("fake", type=Path)
    p.add_argument("--real_glob", default="*", help="which files of the real folder")
    p.add_argument("--fake_glob", default="*", help="which files of the fake folder")
    p.add_argument("--device", default="cpu", help="where Inception runs (cpu, cuda)")
    args = p.parse_args(argv)
    try:
        real, fake = images_in(args.real, args.real_glob), images_in(args.fake, args.fake_glob)
        score = score_folders(real, fake, args.device)
    except (ValueError, OSError, FidUnavailable) as err:
        print(f"fid_folders.py: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"real": str(args.real), "fake": str(args.fake), "real_images": len(real),
                      "fake_images": len(fake), "FID": score.fid, "KID": score.kid_mean, "KID_std": score.kid_std,
                      "KID_subsets": score.kid_subsets, "KID_subset_size": score.kid_subset_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
