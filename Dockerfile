# facegate's cloud processes and CLI (bridge, processor worker, erasure worker, audit,
# web, witness) in one image: deploy/compose/compose.yaml and deploy/k8s/ run it with
# a different command each. Multi-stage: compilers and npm stay in the build stage.
# Pinned: the base image by exact version, Python packages by pyproject.toml's pins,
# uPlot by the committed package-lock.json.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends build-essential npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/facegate/app
COPY pyproject.toml README.md ./
COPY edge_agent ./edge_agent
COPY stream_processor ./stream_processor
COPY docs ./docs
# The console's browser library, from the lock file (npm ci: exact versions or fail).
RUN cd stream_processor/web/assets && npm ci --omit=dev --no-audit --no-fund
# Editable into a venv at the path it keeps in the runtime stage, so the package's
# data files (pages, assets, schemas) are read from the source tree.
RUN python -m venv /opt/facegate \
 && /opt/facegate/bin/pip install -e ".[cloud,edge]" \
 && /opt/facegate/bin/facegate --version

FROM ${PYTHON_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# mosquitto: mosquitto_passwd for 'facegate devices' (the broker itself is not run here);
# fonts: Chinese labels on printed camera notices and receipts; libgl/libglib: OpenCV.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends mosquitto fonts-wqy-microhei \
      libglib2.0-0 libgl1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 facegate \
 && useradd --system --uid 10001 --gid facegate --home-dir /var/lib/facegate \
      --shell /usr/sbin/nologin facegate \
 && install -d -o facegate -g facegate -m 0700 /var/lib/facegate
COPY --from=build /opt/facegate /opt/facegate
ENV PATH=/opt/facegate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FACEGATE_STATE_DIR=/var/lib/facegate
USER 10001:10001
WORKDIR /var/lib/facegate
VOLUME ["/var/lib/facegate"]
# The web app's port; each process's metrics port is set by its own FACEGATE_… setting.
EXPOSE 8080
ENTRYPOINT ["facegate"]
CMD ["--help"]
