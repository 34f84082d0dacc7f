#!/usr/bin/env bash
# Stand-in base images for machines that reach Debian's packages and PyPI but no container
# registry (no python:*-slim, no nginx from Docker Hub). Needs root, mmdebstrap and a running
# Docker engine:
#
#   deploy/standin/build.sh            # builds both, skips one whose tag already exists
#   FORCE=1 deploy/standin/build.sh    # builds both again
#
# loss-service-standin/python:bookworm  Debian bookworm's python3 + python3-venv, with
#                                       /usr/local/bin/python and this machine's CA bundle
# loss-service-standin/nginx:bookworm   Debian bookworm's nginx
#
# Then: make image PYTHON_IMAGE=loss-service-standin/python:bookworm
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
suite="${STANDIN_SUITE:-bookworm}"
docker="${DOCKER:-docker}"
export DOCKER_BUILDKIT=0 # the legacy builder: BuildKit would pull its frontend image

exists() { "$docker" image inspect "$1" >/dev/null 2>&1; }

rootfs() { # name, packages: an mmdebstrap tarball of $suite imported as an image
    local tag="loss-service-standin/rootfs-$1:$suite" work
    if [ -z "${FORCE:-}" ] && exists "$tag"; then return; fi
    work="$(mktemp -d)"
    # --variant=apt: Essential packages and apt, plus the ones named; no docs or man pages.
    mmdebstrap --quiet --variant=apt --include="$2" \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        "$suite" "$work/rootfs.tar"
    "$docker" import "$work/rootfs.tar" "$tag" >/dev/null
    rm -rf "$work"
}

image() { # name: deploy/standin/NAME.Dockerfile on its rootfs
    local tag="loss-service-standin/$1:$suite" context
    if [ -z "${FORCE:-}" ] && exists "$tag"; then echo "$tag (kept)"; return; fi
    context="$(mktemp -d)"
    cp /etc/ssl/certs/ca-certificates.crt "$context/"
    "$docker" build --quiet -f "$here/$1.Dockerfile" \
        --build-arg STANDIN_ROOTFS="loss-service-standin/rootfs-$1:$suite" -t "$tag" "$context" >/dev/null
    rm -rf "$context"
    echo "$tag"
}

rootfs python python3,python3-venv,ca-certificates
image python
rootfs nginx nginx
image nginx
