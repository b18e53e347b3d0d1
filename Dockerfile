# csr-webhook container image.
#
#   docker build -t csr-webhook:0.1.0 .
#   docker run --rm -p 8443:8443 -p 9090:9090 csr-webhook:0.1.0    # development certificate
#
# Two stages: the builder turns the source tree into a wheel and installs it with its
# dependencies (all published as binary wheels) into /opt/venv; the final stage gets only that
# venv and the shipped policies. No compiler, no pip, no build tooling in the final image.
#
# Runtime facts (see docs/deploy.md): the image runs as uid/gid 65532 and works with a
# read-only root filesystem. Only two paths are ever written, both emptyDirs in the pod:
#   /var/run/csr-webhook/metrics  PROMETHEUS_MULTIPROC_DIR: the server empties it at start and
#                                 keeps one mmap'd file per worker process and metric type
#   /tmp                          TMPDIR: gunicorn's worker heartbeat files (a memory-backed
#                                 emptyDir gives what gunicorn's usual `--worker-tmp-dir
#                                 /dev/shm` advice gives); the development certificate when
#                                 no --tls-cert/--tls-key is passed
# Bytecode is compiled at build time (pip compiles on install); PYTHONDONTWRITEBYTECODE stops
# Python from trying to write .pyc files at run time.

FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY pyproject.toml README.md ./
COPY webhook/ ./webhook/

# The builder's pip installs into a venv that has no pip of its own.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --only-binary=:all: /wheels/*.whl


FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="csr-webhook" \
      org.opencontainers.image.description="Kubernetes admission webhook for CertificateSigningRequests" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH="/opt/venv/bin:${PATH}" \
    CSR_WEBHOOK_POLICIES=/etc/csr-webhook/policies \
    PROMETHEUS_MULTIPROC_DIR=/var/run/csr-webhook/metrics \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# A named, numeric, non-root user, and the metrics directory it owns (so that the image also
# runs without a mounted emptyDir, e.g. under plain `docker run`).
RUN groupadd --system --gid 65532 csr-webhook \
    && useradd --system --no-log-init --uid 65532 --gid 65532 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin csr-webhook \
    && install -d -o 65532 -g 65532 -m 0750 /var/run/csr-webhook /var/run/csr-webhook/metrics

COPY --from=builder /opt/venv /opt/venv
COPY policies/ /etc/csr-webhook/policies/

USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["csr-webhook", "serve"]
