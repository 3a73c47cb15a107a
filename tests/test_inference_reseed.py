"""In the paper's mode (dropout on, batch statistics) translate.py reseeds from --seed before
every image, as serve.py does per request: a result depends only on the image, the checkpoint
and the seed, not on which other images share --input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.test_serve import handler_for
from tests.test_translate import rng_image, run, save_ours

# A U-Net with dropout, run without --eval: every result draws dropout masks.
UNET_DROPOUT = dict(netG="unet_128", ngf=2, norm="batch", no_dropout=False)


def test_a_result_does_not_depend_on_the_other_images(tmp_path: Path) -> None:
    save_ours(tmp_path / "ck" / "exp", **UNET_DROPOUT)
    alone, folder = tmp_path / "alone", tmp_path / "folder"
    alone.mkdir()
    (folder / "sub").mkdir(parents=True)
    rng_image((40, 30), "RGB", 1).save(folder / "0_first.png")
    rng_image((50, 20), "RGB", 2).save(folder / "1_second.png")
    rng_image((36, 36), "RGB", 3).save(folder / "sub" / "c.png")   # read after the two above
    rng_image((36, 36), "RGB", 3).save(alone / "c.png")
    for source, out, seed in ((alone / "c.png", "o_alone", "0"), (folder, "o_folder", "0"),
                              (alone / "c.png", "o_seed1", "1")):
        assert run(tmp_path, "--name", "exp", "--input", str(source), "--output", str(tmp_path / out),
                   "--seed", seed) == 0
    by_itself = (tmp_path / "o_alone" / "c.png").read_bytes()
    assert (tmp_path / "o_folder" / "sub" / "c.png").read_bytes() == by_itself
    # The seed does matter (dropout is on), so the equality above is not trivial.
    assert (tmp_path / "o_seed1" / "c.png").read_bytes() != by_itself
    # serve.py's translation of the same image (its handler reseeds from the same default --seed).
    with Image.open(alone / "c.png") as image:
        served = np.asarray(handler_for(tmp_path, "exp")({"composite": image.convert("RGB")}))
    assert np.array_equal(served, np.asarray(Image.open(tmp_path / "o_alone" / "c.png")))
