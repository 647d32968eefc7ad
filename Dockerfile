# The metabrain sidecar. CPU image by default; for GPUs build with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t metabrain:gpu .
# Docker cannot run on the machines this project is developed on: this recipe is checked by
# tests/test_deploy.py (its command line parses with `metabrain serve`), not built, there.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

RUN pip install --index-url ${TORCH_INDEX} "torch==2.13.0"
WORKDIR /opt/metabrain
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY sidecar ./sidecar
COPY sim ./sim
RUN pip install ".[fast]" && useradd --system --uid 10001 metabrain \
    && mkdir -p /var/lib/metabrain && chown 10001 /var/lib/metabrain
USER 10001

# 50051 gRPC, 50052 WebSocket, 9464 Prometheus metrics, 8090 dashboard (off unless --dashboard-port).
EXPOSE 50051 50052 9464
ENTRYPOINT ["metabrain", "serve"]
CMD ["--host", "127.0.0.1", "--grpc-port", "50051", "--ws-port", "50052", \
     "--metrics-port", "9464", "--metrics-host", "0.0.0.0", "--log-format", "json", "--state-dir", "/var/lib/metabrain"]
