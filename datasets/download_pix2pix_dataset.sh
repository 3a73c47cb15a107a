#!/usr/bin/env bash
# Download one of the standard pix2pix datasets and extract it into datasets/NAME.
#
#   bash datasets/download_pix2pix_dataset.sh facades
#
# The archive goes to a hidden temporary folder next to the target and is extracted there;
# only a complete extraction is renamed to datasets/NAME, so an interrupted or failed run never
# leaves a half-filled dataset folder behind.
#
# Environment overrides (for mirrors and tests):
#   PIX2PIX_DATASETS_URL     base URL (default http://efrosgans.eecs.berkeley.edu/pix2pix/datasets)
#   PIX2PIX_DATASETS_DIR     folder that receives NAME/ (default: the folder holding this script)
#   PIX2PIX_CONNECT_TIMEOUT  seconds to wait for the server to answer (default 20)
set -euo pipefail

NAMES=(facades cityscapes maps edges2shoes edges2handbags night2day)
BASE_URL="${PIX2PIX_DATASETS_URL:-http://efrosgans.eecs.berkeley.edu/pix2pix/datasets}"
DEST_ROOT="${PIX2PIX_DATASETS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
CONNECT_TIMEOUT="${PIX2PIX_CONNECT_TIMEOUT:-20}"
PROG=download_pix2pix_dataset

usage() {
    echo "usage: $0 NAME, where NAME is one of: ${NAMES[*]}" >&2
    exit 2
}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

[[ $# -eq 1 ]] || usage
NAME=$1
case " ${NAMES[*]} " in
    *" $NAME "*) ;;
    *) echo "$PROG: error: unknown dataset '$NAME'" >&2; usage ;;
esac

URL="$BASE_URL/$NAME.tar.gz"
TARGET="$DEST_ROOT/$NAME"
if [[ -e $TARGET ]]; then
    echo "$TARGET already exists; remove it to download $NAME again"
    exit 0
fi
mkdir -p "$DEST_ROOT" || die "cannot create $DEST_ROOT"

# Same filesystem as the target, so the final move is a rename.
WORK_DIR=$(mktemp -d "$DEST_ROOT/.$NAME.download-XXXXXX") || die "cannot write to $DEST_ROOT"
trap 'rm -rf "$WORK_DIR"' EXIT
trap 'exit 130' INT TERM   # run the EXIT cleanup on Ctrl-C and kill too
ARCHIVE="$WORK_DIR/$NAME.tar.gz"

# A progress bar on a terminal; elsewhere (logs, scripts) no output but this script's own lines.
if [[ -t 2 ]]; then PROGRESS=(--progress-bar); else PROGRESS=(--silent); fi
NO_SERVER="no network connection, or the server is unreachable; check the connection, or fetch the file elsewhere and extract it into $DEST_ROOT"
# An answer with an error status is no network problem: the name or the mirror is wrong.
refused() {
    die "the server answered $URL with HTTP $1; is the URL right? (PIX2PIX_DATASETS_URL=$BASE_URL; the default mirror is http://efrosgans.eecs.berkeley.edu/pix2pix/datasets)"
}

echo "downloading $URL"
if command -v curl >/dev/null 2>&1; then
    # --fail: an error status (404) is exit 22 with the status in %{http_code}, not a saved error page.
    set +e
    STATUS=$(curl --fail --location "${PROGRESS[@]}" --connect-timeout "$CONNECT_TIMEOUT" --write-out '%{http_code}' \
                  --output "$ARCHIVE" "$URL")
    CODE=$?
    set -e
    case $CODE in
        0) ;;
        22) refused "$STATUS" ;;
        5|6|7|28|35|52|55|56) die "could not download $URL ($NO_SERVER)" ;;
        *) die "could not download $URL (curl exit status $CODE); check the URL and the connection" ;;
    esac
elif command -v wget >/dev/null 2>&1; then
    set +e
    # Its log (status lines included) is read here for the status, not shown.
    ERRORS=$(wget --server-response --connect-timeout="$CONNECT_TIMEOUT" --tries=1 \
                  --output-document="$ARCHIVE" "$URL" 2>&1)
    CODE=$?
    set -e
    case $CODE in
        0) ;;
        8) refused "$(grep -o 'HTTP/[0-9.]* [0-9]*' <<<"$ERRORS" | tail -1 | cut -d' ' -f2)" ;;
        4) die "could not download $URL ($NO_SERVER)" ;;
        *) die "could not download $URL (wget exit status $CODE); check the URL and the connection" ;;
    esac
else
    die "neither curl nor wget is installed; install one, or download $URL by hand and extract it into $DEST_ROOT"
fi

mkdir "$WORK_DIR/extract"
if ! tar -xzf "$ARCHIVE" -C "$WORK_DIR/extract" 2>"$WORK_DIR/tar_errors"; then
    die "$URL did not give a valid .tar.gz archive (interrupted download?: $(head -n 1 "$WORK_DIR/tar_errors")); nothing was written to $TARGET"
fi
# The official archives hold a single NAME/ folder; accept a flat archive too.
SOURCE="$WORK_DIR/extract/$NAME"
[[ -d $SOURCE ]] || SOURCE="$WORK_DIR/extract"
[[ -n $(ls -A "$SOURCE") ]] || die "the archive from $URL is empty; nothing was written to $TARGET"
mv "$SOURCE" "$TARGET"
echo "$NAME is ready in $TARGET"
