# One image for the trainer, the Discord bot and the web page; JAX_EXTRA picks JAX's wheels.
#
#   docker build -t dann:cpu .                                  # the bot, the web page, a CPU trainer
#   docker build -t dann:cuda12 --build-arg JAX_EXTRA=cuda12 .  # NVIDIA GPU, host driver >= 525
#   docker build -t dann:cuda13 --build-arg JAX_EXTRA=cuda13 .  # NVIDIA GPU, host driver >= 580
#
# The CUDA libraries come as pip wheels with jax[cuda12], so the base is python-slim, not a CUDA
# image: the host needs only the NVIDIA driver and the NVIDIA Container Toolkit. Do not set
# LD_LIBRARY_PATH: it can make JAX load other CUDA libraries than the wheels'.
# docker-compose.yml builds both variants.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: dann and its dependencies in a virtual environment -------------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG JAX_EXTRA=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/dann
WORKDIR /src
# Every package first, from the lock file of this variant: each pinned, with its hashes, so pip
# refuses anything else (requirements/update.sh writes them from the tested environment). On
# x86-64 everything, CUDA wheels included, is a binary wheel for CPython 3.11: no compiler needed.
COPY requirements/ requirements/
RUN /opt/dann/bin/pip install --require-hashes --no-deps -r requirements/${JAX_EXTRA:-cpu}.lock
COPY pyproject.toml README.md ./
COPY lstm/ lstm/
COPY trainer/ trainer/
COPY bot/ bot/
COPY web/ web/
COPY dann/ dann/
# Then dann itself (not editable, so the source stays in this stage), with nothing fetched: its
# dependencies are in already and its build backend (setuptools) came from the lock file.
RUN /opt/dann/bin/pip install --no-deps --no-build-isolation --no-index . \
    && /opt/dann/bin/pip check

# --- runtime: the environment only; no source, no caches, not root --------------------------------
FROM ${PYTHON_IMAGE}
# g++ builds the LSTM's CPU kernel on first use (lstm/native.py): training on a CPU runs about
# twice as fast with it (docs/measurements.md). Without it dann warns once and runs the pure-JAX scan.
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*
# uid 1000, the usual first user of a Linux host, so an export bind-mounted from that user's home
# is readable. /data/checkpoints, /data/state and /data/cache (a bucket's local mirror) belong to
# dann because Docker copies a mount point's owner into an empty named volume on first use: that
# is what lets dann write to them.
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin dann \
    && mkdir -p /data/checkpoints /data/state /data/cache /data/export \
    && chown dann:dann /data/checkpoints /data/state /data/cache
COPY --from=build /opt/dann /opt/dann
# The container's own defaults; docker-compose.yml sets them again, because .env (written for
# running dann on the host) would otherwise override them.
ENV PATH=/opt/dann/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DANN_CHECKPOINT_DIR=/data/checkpoints \
    DANN_WEB_HOST=0.0.0.0
USER dann
WORKDIR /home/dann
EXPOSE 8000
CMD ["dann", "--help"]
