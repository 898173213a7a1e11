# CPU image that serves one gaitrun run folder over HTTP (gaitrun serve; see README "Serving").
# Not built on the development machines (no Docker engine there): build and try it with
#   docker build -t gaitrun-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/artifacts/<name>/<run id>:/run:ro" -v gaitrun-gallery:/gallery gaitrun-serve
#   curl http://127.0.0.1:8000/healthz
# The run folder is mounted read-only at /run; the gallery of enrolled walks lives in the /gallery volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /src
COPY pyproject.toml README.md ./
COPY runner ./runner
COPY plugins ./plugins
RUN pip install . && useradd --create-home --uid 10001 gaitrun && mkdir /gallery && chown gaitrun /gallery

USER gaitrun
WORKDIR /home/gaitrun
VOLUME ["/gallery"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
ENTRYPOINT ["gaitrun", "serve", "/run", "--host", "0.0.0.0", "--port", "8000", "--gallery", "/gallery/gallery.npz"]
