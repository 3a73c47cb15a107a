#!/usr/bin/env bash
# The colorization experiment of the README ("A colorization experiment"): three settings
# trained on the facades photos (L -> ab), validated while training, tested, and compared on
# one page with compare.py. About 3 minutes per run on a 2-core CPU.
#   bash benchmarks/colorization_compare.sh [facades folder] [work folder]
set -euo pipefail
FACADES=${1:-./datasets/facades}
WORK=${2:-./colorization_experiment}
PY=${PYTHON:-python}
PHOTOS="$WORK/photos"

# The photo half (left) of each facades pair: a folder of colour photos per split.
"$PY" - "$FACADES" "$PHOTOS" <<'PYEOF'
import sys
from pathlib import Path
from PIL import Image
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for phase in ("train", "val", "test"):
    (dst / phase).mkdir(parents=True, exist_ok=True)
    for path in sorted((src / phase).glob("*.jpg")):
        with Image.open(path) as pair:
            pair.crop((0, 0, pair.width // 2, pair.height)).save(dst / phase / f"{path.stem}.png")
PYEOF

COMMON=(--model colorization --dataroot "$PHOTOS" --checkpoints_dir "$WORK/checkpoints" --netG unet_128
        --ngf 32 --ndf 32 --load_size 143 --crop_size 128 --display_id 0 --num_threads 1 --seed 1
        --n_epochs 1 --n_epochs_decay 0 --max_steps 300 --print_freq 25
        --val_freq 50 --val_max_images 30 --eval --best_metric ssim)
declare -A SETTINGS=(
  [color_l1_100]=""                       # the paper's weight of L1
  [color_l1_10]="--lambda_L1 10"          # more weight on the GAN: bolder, riskier colours
  [color_ema]="--ema_decay 0.99"          # a moving average of G's weights
)
for name in color_l1_100 color_l1_10 color_ema; do
  # shellcheck disable=SC2086
  "$PY" train.py "${COMMON[@]}" --name "$name" --overwrite ${SETTINGS[$name]}
  for epoch in latest best; do
    "$PY" test.py --model colorization --dataroot "$PHOTOS" --checkpoints_dir "$WORK/checkpoints" --name "$name" \
        --load_size 128 --crop_size 128 --num_threads 1 --eval --fid --results_dir "$WORK/results" --epoch "$epoch"
  done
done
for epoch in latest best; do
  "$PY" compare.py "$WORK"/checkpoints/color_l1_100 "$WORK"/checkpoints/color_l1_10 "$WORK"/checkpoints/color_ema \
      --results_dir "$WORK/results" --epoch "$epoch" --out "$WORK/compare_$epoch.html" --max_images 6
done
