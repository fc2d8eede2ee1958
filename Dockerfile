# syntax=docker/dockerfile:1
# The image the Helm chart runs: `rolescope serve` by default, `locust -f
# /app/loadtests/locustfile.py` for the load generator, py-spy for the opt-in
# profiling sidecar. Build:  docker build -t ghcr.io/rolescope/rolescope:0.1.0 .
ARG PYTHON_VERSION=3.11

# --- build: compilers live here only ----------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY platform/ platform/
COPY exporters/ exporters/
COPY loadtests/ loadtests/
COPY dashboards/ dashboards/
COPY alerts/ alerts/
COPY examples/ examples/
# A regular (non-editable) install into a virtualenv that the runtime stage copies whole.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip wheel \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/rolescope --help >/dev/null

# --- runtime: no compilers, no package caches, a non-root user --------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# procps gives pgrep/ps for finding the process py-spy should attach to.
RUN apt-get update \
 && apt-get install -y --no-install-recommends procps \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 rolescope \
 && useradd --system --uid 10001 --gid rolescope --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin rolescope
COPY --from=build /opt/venv /opt/venv
COPY loadtests/locustfile.py /app/loadtests/locustfile.py
# The root filesystem is read-only on Kubernetes: nothing may write bytecode or caches outside
# /tmp (an emptyDir) and /data (the SQLite volume).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /app
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["rolescope"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
