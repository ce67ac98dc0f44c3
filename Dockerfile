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
COPY pyproject.toml README.md ./
COPY lstm/ lstm/
COPY trainer/ trainer/
COPY bot/ bot/
COPY web/ web/
COPY dann/ dann/
# The README's install (`pip install .`; not editable, so the source stays in this stage), with the
# direct dependencies pinned to the versions the tests ran with. On x86-64 everything, CUDA wheels
# included, resolves to binary wheels for CPython 3.11, so no compiler is needed. jax[cuda12]==V
# also pins the CUDA plugin to the same V.
RUN /opt/dann/bin/pip install . \
        "jax${JAX_EXTRA:+[$JAX_EXTRA]}==0.10.2" jaxlib==0.10.2 flax==0.12.8 optax==0.2.8 \
        orbax-checkpoint==0.12.8 pydantic-settings==2.16.3 discord.py==2.7.1 apscheduler==3.11.3 \
        tqdm==4.70.1 matplotlib==3.11.2 fastapi==0.165.0 uvicorn==0.54.0 limits==5.8.0 wordfilter==0.2.7 \
        scikit-learn==1.9.1 markovify==0.9.4 tokenizers==0.23.3 tweepy==4.17.0 Mastodon.py==2.3.3 atproto==0.0.73 \
        SQLAlchemy==2.1.9

# --- runtime: the environment only; no source, no caches, not root --------------------------------
FROM ${PYTHON_IMAGE}
# uid 1000, the usual first user of a Linux host, so an export bind-mounted from that user's home
# is readable. /data/checkpoints and /data/state belong to dann because Docker copies a mount
# point's owner into an empty named volume on first use: that is what lets dann write to them.
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin dann \
    && mkdir -p /data/checkpoints /data/state /data/export \
    && chown dann:dann /data/checkpoints /data/state
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
