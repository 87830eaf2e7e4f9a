# Serves an index built with `hansard-search index` and mounted at /index:
#
#   docker build -t hansard-search .
#   docker run -p 8000:8000 -v "$PWD/index:/index:ro" hansard-search
#
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HANSARD_INDEX=/index \
    HANSARD_MODEL_CACHE=/opt/hansard-models \
    HF_HUB_OFFLINE=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY embeddings ./embeddings
COPY service ./service

# torch from PyTorch's CPU wheel index: the default wheel bundles CUDA (GBs).
# The int8 ONNX export of the model is made here, once, so the service
# starts in seconds and needs no writable cache.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu . \
    && python -c "from embeddings.encoder import load_encoder; load_encoder(use_cache=False)" \
    && chmod -R a+rX /opt/hansard-models \
    && useradd --system --uid 1000 hansard
USER hansard

VOLUME ["/index"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
CMD ["hansard-search", "serve", "--host", "0.0.0.0", "--port", "8000"]
