#!/usr/bin/env bash
# Sets up everything this project needs, in one environment:
#   bash install.sh            into the active venv/conda env, else into ./.venv (created here)
#   bash install.sh --cpu      with PyTorch's CPU-only build (no CUDA libraries, 4 GB less)
#   bash install.sh --cuda     with the torch wheel the package index gives (CUDA on Linux x86_64),
#                              replacing a CPU-only torch already installed
#   bash install.sh --force    reinstall even when the environment is already up to date
#   bash install.sh --plan     print which torch build would be installed, and why; change nothing
# Without --cpu/--cuda: a torch already in the environment is kept; a machine with an NVIDIA GPU
# gets the index's default wheel; any other gets the build measured fastest for its CPU class
# (scripts/torch_choice.py, figures in requirements/torch_builds.json), else the CPU-only build
# when pip can find one (its own indexes and find-links first, then $TORCH_CPU_INDEX).
# Every pip call holds constraints.txt (pip -c), so the setuptools range that both torch
# (>=77.0.3) and visdom's sdist (<81, pkg_resources) need is kept whatever pip resolves first.
# Last, the project itself: `pip install -e .` (pyproject.toml), which puts its packages on the
# environment's path and adds the console scripts pix2pix-train, -test, -translate, -serve, -export.
set -euo pipefail
cd "$(dirname "$0")"

BUILD=auto
FORCE=0
PLAN_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --cpu) BUILD=cpu ;;
    --cuda) BUILD=index ;;
    --force) FORCE=1 ;;
    --plan) PLAN_ONLY=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (use --cpu, --cuda, --force, --plan)" >&2; exit 2 ;;
  esac
done
# PyTorch publishes its CPU-only Linux wheels on its own index, not on the default one.
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

PY=$(bash scripts/python_for_project.sh)
ENV_DIR=""          # where the environment will be, when --plan does not create it
if [ "$PY" = ".venv/bin/python" ] && [ ! -x .venv/bin/python ]; then
  if [ "$PLAN_ONLY" = 1 ]; then PY=python3; ENV_DIR=$PWD/.venv
  else echo "install.sh: no environment is active: creating ./.venv"; python3 -m venv .venv; fi
fi

# Skip the work when this environment was set up from exactly these files and flags.
PREFIX=$("$PY" -c 'import sys; print(sys.prefix)')
ENV_DIR=${ENV_DIR:-$PREFIX}
STAMP="$PREFIX/.pix2pix-install-stamp"
WANT=$(cat install.sh constraints.txt pyproject.toml requirements/*.txt | sha256sum | cut -d' ' -f1)-$BUILD
if [ "$PLAN_ONLY" = 0 ] && [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
   && "$PY" -c "import torch, visdom, dominate, tensorboard, importlib.metadata as m; m.distribution('pix2pix')" \
      2>/dev/null; then
  echo "install.sh: $PREFIX is up to date"
  exit 0
fi

# -- which torch ---------------------------------------------------------------------------
has_nvidia_gpu() {
  # PIX2PIX_NVIDIA_GPU=0/1 overrides the probe (the tests use it).
  case "${PIX2PIX_NVIDIA_GPU:-}" in 0) return 1 ;; 1) return 0 ;; esac
  ls /dev/nvidia[0-9]* >/dev/null 2>&1 || nvidia-smi -L >/dev/null 2>&1
}
# The CPU-only torch versions pip can see with these extra arguments, newest first.
cpu_torch_versions() {
  "$PY" -m pip index versions torch "$@" 2>/dev/null \
    | sed -n 's/^Available versions: //p' | tr ',' '\n' | tr -d ' ' | grep '+cpu$' || true
}
cpu_index_reachable() {
  "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=15)" \
    "$TORCH_CPU_INDEX" 2>/dev/null
}
# Sets CPU_VERSIONS (empty when pip sees none) and TORCH_ARGS (PyTorch's CPU index when needed).
find_cpu_versions() {
  CPU_VERSIONS=$(cpu_torch_versions)
  if [ -z "$CPU_VERSIONS" ] && cpu_index_reachable; then
    TORCH_ARGS=(--extra-index-url "$TORCH_CPU_INDEX")
    CPU_VERSIONS=$(cpu_torch_versions "${TORCH_ARGS[@]}")
  fi
}
# pip's answer when a version is not there or its constraints (a cap such as torch<=X) refuse it.
refused_by_pip() {
  grep -q -e ResolutionImpossible -e "conflicting dependencies" -e "No matching distribution" <<<"$1"
}

TORCH_ARGS=()        # extra pip arguments for the torch step
CPU_VERSIONS=""
REASON=""
PIN=""               # the index build's measured version, when the measurement chose it
if [ "$BUILD" = auto ]; then
  if "$PY" -c "import torch" 2>/dev/null; then
    BUILD=keep; REASON="$("$PY" -c 'import torch; print(torch.__version__)')"
  elif has_nvidia_gpu; then
    BUILD=index; REASON="this machine has an NVIDIA GPU"
  else
    CHOICE=$("$PY" scripts/torch_choice.py --env-prefix "$ENV_DIR")
    BUILD=$(sed -n 's/^BUILD=//p' <<<"$CHOICE")
    PIN=$(sed -n 's/^PIP=//p' <<<"$CHOICE")
    REASON="no NVIDIA GPU here; $(sed -n 's/^REASON=//p' <<<"$CHOICE")"
  fi
fi
REPLACE=""          # an installed CPU-only torch that --cuda replaces
if [ "$BUILD" = index ] && [ -z "$REASON" ]; then
  REPLACE=$("$PY" -c "import torch; print('' if torch.version.cuda else torch.__version__)" 2>/dev/null || true)
  [ -n "$REPLACE" ] && REASON="replacing the CPU-only $REPLACE"
fi
if [ "$BUILD" = cpu ]; then
  find_cpu_versions
  if [ -z "$CPU_VERSIONS" ]; then
    case "$REASON" in
      "") echo "install.sh: --cpu: no CPU-only torch wheel in pip's indexes, and PyTorch's CPU wheel index" \
               "$TORCH_CPU_INDEX cannot be reached (set TORCH_CPU_INDEX to a mirror, or install without --cpu)" >&2
          exit 1 ;;
      *) BUILD=index; REASON="$REASON, but pip finds no CPU-only torch wheel" ;;
    esac
  fi
fi
case "$BUILD" in
  keep) PLAN="torch: the installed one stays ($REASON)" ;;
  index) PLAN="torch: the package index's default build${PIN:+, $PIN}${REASON:+ ($REASON)}" ;;
  cpu) PLAN="torch: CPU-only $(echo "$CPU_VERSIONS" | head -1)${REASON:+ ($REASON)}" ;;
esac
if [ "$PLAN_ONLY" = 1 ]; then
  echo "install.sh --plan: $PLAN"
  exit 0
fi
echo "install.sh: $PLAN"

START=$SECONDS
PIP=("$PY" -m pip install -q -c constraints.txt)
"$PY" -m pip install -q --upgrade pip
# First the build tools inside the constraint (this downgrades a setuptools >= 81 that is
# already there), then visdom can be built without isolation against them.
"${PIP[@]}" setuptools wheel
if [ -n "$REPLACE" ]; then
  "$PY" -m pip uninstall -q -y torch
fi
HOLD=$(mktemp)
trap 'rm -f "$HOLD"' EXIT
if [ -n "$PIN" ]; then
  # The measured version; where pip's constraints refuse it, the CPU-only build after all.
  if LOG=$("${PIP[@]}" "$PIN" 2>&1); then
    echo "$PIN" > "$HOLD"
  elif refused_by_pip "$LOG"; then
    WHY=$(grep -m1 '^ERROR' <<<"$LOG" | head -c 160 || true)
    echo "install.sh: pip cannot install $PIN here ($WHY): the CPU-only build instead"
    BUILD=cpu
    find_cpu_versions
    [ -n "$CPU_VERSIONS" ] || { echo "install.sh: and pip finds no CPU-only torch wheel either" >&2; exit 1; }
  else
    echo "$LOG" >&2; exit 1
  fi
fi
if [ "$BUILD" = cpu ]; then
  # The newest CPU-only version pip's constraints admit (a cap such as torch<=X refuses newer
  # ones at once); any other failure (network, disk) is reported as it is.
  INSTALLED=""
  for version in $(echo "$CPU_VERSIONS" | head -5); do
    if LOG=$("${PIP[@]}" "${TORCH_ARGS[@]}" "torch==$version" 2>&1); then
      INSTALLED=$version; break
    fi
    if ! refused_by_pip "$LOG"; then
      echo "$LOG" >&2; exit 1
    fi
  done
  if [ -z "$INSTALLED" ]; then
    echo "install.sh: no CPU-only torch ($(echo $CPU_VERSIONS | head -c 80)...) is admitted by pip's constraints" >&2
    exit 1
  fi
  # Later steps must not swap it for the index's default build.
  echo "torch==$INSTALLED" > "$HOLD"
fi
"${PIP[@]}" -c "$HOLD" -r requirements/core.txt -r requirements/test.txt -r requirements/quality.txt \
  -r requirements/serve.txt -r requirements/export.txt
"${PIP[@]}" -c "$HOLD" --no-build-isolation visdom
# Its requirements are all in place by now; --no-deps so that nothing (torch above all) is
# swapped for another build, and no isolation so the build uses the setuptools held above.
"${PIP[@]}" --no-build-isolation --no-deps -e .
"$PY" -c "import torch, visdom, dominate, tensorboard; \
print('install.sh: torch', torch.__version__, '| CUDA ' + torch.version.cuda if torch.version.cuda else '| CPU-only build')"
echo "$WANT" > "$STAMP"
echo "install.sh: done in $((SECONDS - START)) s ($(du -sh "$PREFIX" | cut -f1) in the environment)"
