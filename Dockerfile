# syntax=docker/dockerfile:1
#
# loss-service image.
#
#   docker build -t loss-service .
#   docker run --rm -p 8000:8000 loss-service
#
# Two stages on the same glibc base (numpy, numba/llvmlite, uvloop, orjson ship manylinux
# wheels, so nothing is compiled here; Alpine/musl would mean building them from source):
#   builder  installs the project and its dependencies into the virtualenv /opt/venv;
#   runtime  copies only that virtualenv, then compiles every numba kernel at build time, once
#            per x86-64 level, into LOSS_KERNEL_CACHES so a container is ready about a second
#            after it starts.
# Both stages must use the same image: the venv's interpreter links to /usr/local/bin/python.
# The base image, by tag and digest, in this one place (the digest is what is pulled; the tag
# says what it is). No registry is reachable from the development machines: the digest is the
# one public projects pin for this tag, not checked here against Docker Hub. Machines without a
# registry build on a stand-in instead (deploy/standin/build.sh; `make image-test` does):
#   docker build --build-arg PYTHON_IMAGE=loss-service-standin/python:bookworm .
ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm@sha256:519591d6871b7bc437060736b9f7456b8731f1499a57e22e6c285135ae657bf7

# ---- builder ----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

RUN python -m venv /opt/venv
# The venv first on PATH: `pip` below is the venv's.
ENV PATH=/opt/venv/bin:${PATH} \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Every dependency, and the build backend, at the exact version and file hashes of the lock
# (`make lock` writes it from pyproject.toml's ranges): two builds install the same files, and
# a file whose hash differs is refused. Wheels only: the slim base has no compiler. A layer of
# its own, rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock
# README.md* : the readme pyproject.toml names, whenever the repository has it.
COPY pyproject.toml README.md* ./
COPY service ./service
# A regular (non-editable) install of the project alone: its dependencies are the lock's, and
# its build backend too (no isolated build environment, which would fetch an unpinned one).
# The package lands in the venv's site-packages, so the runtime stage needs nothing from /src.
RUN pip install --no-cache-dir --no-deps --no-build-isolation .

# ---- runtime ----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="loss-service" \
      org.opencontainers.image.description="Per-sample losses, cost and exact gradients from Numba kernels over HTTP." \
      org.opencontainers.image.licenses="MIT"

# One numba cache per x86-64 level, /var/cache/numba/<level>/. numba keys each cached kernel on
# (target triple, CPU name, CPU features): compiled for the build machine's CPU the cache would
# miss on any other CPU, and compiled for "generic" (SSE2) it runs everywhere but up to 6x
# slower than for the host (README, Docker). So the build bakes "generic" and each psABI level
# (x86-64-v2: SSE4.2, v3: AVX2/FMA, v4: AVX-512) and, when the service is imported, it points
# numba at the best baked level the host's CPU flags support (service/ops/cpu.py:
# NUMBA_CPU_NAME, NUMBA_CPU_FEATURES="", NUMBA_CACHE_DIR=<root>/<level>); NUMBA_CPU_NAME must
# not be set here. The cache must stay writable by the app user: numba skips a cache directory
# it cannot write to, and with no writable place left the kernels fail at import
# ("RuntimeError: cannot cache function ...: no locator available").
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOSS_KERNEL_CACHES=/var/cache/numba \
    LOSS_SERVICE_PORT=8000 \
    LOSS_SERVICE_GRPC_PORT=8001

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0755 "${LOSS_KERNEL_CACHES}"

COPY --from=builder /opt/venv /opt/venv

# An empty working directory, so `python -m service` can only import the installed package.
WORKDIR /app
# Numeric, so a runtime (Kubernetes runAsNonRoot, say) can tell it is not root.
USER 10001:10001

# Fill one numba cache per CPU level, as the app user, against the exact files this image
# ships. warm_all runs the kernels, so a level is baked only when the build machine can run its
# code (`python -m service.ops.levels LEVEL...` prints those); build on an AVX-512 machine for
# x86-64-v4. "host" is the build machine's own CPU as numba sees it (LLVM's name, "znver4" say,
# and its feature string, which record_bake writes beside the cache), used by hosts of the same
# name that have every feature it turns on. A host gets the best cache baked that it supports.
# The levels compile side by side, one process per CPU (xargs -P; each writes its own cache
# directory); with pipefail, the build fails when the level list or any warm-up fails.
ARG KERNEL_CPU_LEVELS="generic x86-64-v2 x86-64-v3 x86-64-v4 host"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -m service.ops.levels ${KERNEL_CPU_LEVELS} | tr ' ' '\n' \
    | xargs -P "$(nproc)" -I '{}' env NUMBA_CPU_NAME='{}' \
        python -c "import service.losses; from service.app import warm_all; from service.ops.cpu import record_bake; print('warm:', warm_all(), 'losses'); record_bake()"

# HTTP, and the Open Inference Protocol over gRPC.
EXPOSE 8000 8001

# Ready (every kernel loaded) rather than merely alive; no curl needed in a slim image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "service.ops.healthcheck"]

# The ports come from LOSS_SERVICE_PORT (8000) and LOSS_SERVICE_GRPC_PORT (8001), workers from
# LOSS_SERVICE_WORKERS (1).
CMD ["python", "-m", "service", "--host", "0.0.0.0"]
