# One image for every environment: the serving runtime, its locked dependencies and one
# model bundle. `make build` (sentiment build) assembles the build context, so the build
# needs no network:
#   wheels/   runtime.lock, a wheel for each locked package and the runtime's own wheel
#             (sentiment/serving/ and sentiment/model/: no training, delivery, gate or promotion code)
#   config/   the service's config: base.yaml and one file per environment
#   models/   a model folder holding exactly one version, marked current
# Labels (commit, source tree, model version and sha256) are set by the build command, and
# so is BASE_IMAGE: config/delivery.yaml's build.base_image, pinned by digest.
ARG BASE_IMAGE

FROM ${BASE_IMAGE} AS builder
COPY wheels/ /wheels/
# Serving needs neither the installers nor the libraries' own test suites and C headers
# (numpy.testing stays: unpickling a scikit-learn model, where the lock has one, imports it).
# .pyc files are compiled here because the runtime root filesystem is read-only, and the
# first requests are about a second slower without them.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels \
        --require-hashes -r /wheels/runtime.lock \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps /wheels/sentiment_service-*.whl \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools \
    && site=/opt/venv/lib/python3.11/site-packages \
    && find "$site" -depth -type d \( -name tests -o -name include \) \
        -path "*/site-packages/*/*" -exec rm -rf {} + \
    && find "$site" -type f \( -name "*.pyx" -o -name "*.pxd" -o -name "*.pyi" -o -name "*.h" \) \
        -delete \
    && python3 -m compileall -q -j 0 /opt/venv

FROM ${BASE_IMAGE}
ARG GIT_COMMIT=unknown
ARG BUILD_ID=unknown

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/sentiment
COPY --from=builder /opt/venv /opt/venv
COPY config/ /app/config/
COPY models/ /app/models/

# HOME=/tmp: the root filesystem is read-only, /tmp is the tmpfs the runtime mounts.
# /var/lib/sentiment: the audit log and outcome store, a volume where it is deployed.
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    SENTIMENT_CONFIG_DIR=/app/config \
    SENTIMENT_SERVICE__HOST=0.0.0.0 \
    SENTIMENT_SERVICE__PORT=8000 \
    SENTIMENT_BUILD__GIT_COMMIT=${GIT_COMMIT} \
    SENTIMENT_BUILD__BUILD_ID=${BUILD_ID}
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["sentiment-serve"]
