#!/usr/bin/env bash
# Rewrites the image's lock files (cpu.lock, cuda12.lock, cuda13.lock) with uv: every package the
# image installs, pinned with its hashes, at the versions installed in the virtual environment the
# tests ran in (.venv), so the image runs what was tested. The Dockerfile installs one of them with
# `pip install --require-hashes`; tests/test_deploy.py checks them against pyproject.toml.
#
#   bash requirements/update.sh      # needs .venv (the README's test command makes it) and PyPI
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q uv
.venv/bin/pip freeze --exclude-editable | grep -v '^dann' > "$tools/tested.txt"
for variant in cpu cuda12 cuda13; do
    extra=()
    [ "$variant" = cpu ] || extra=(--extra "$variant")
    UV_INDEX_URL=https://pypi.org/simple "$tools/venv/bin/uv" pip compile pyproject.toml requirements/build.in \
        "${extra[@]}" --generate-hashes --no-annotate --no-header --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28 --constraint "$tools/tested.txt" --quiet -o "requirements/$variant.lock"
done
