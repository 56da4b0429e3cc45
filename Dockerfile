# Multi-stage: build the customer portal with Node.js and a wheel with the compilers, run
# both on a slim image as a non-root user.
FROM node:20-slim AS portal
WORKDIR /portal
COPY portal/package.json portal/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY portal ./
RUN npm run build

FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BIND_ADDR=0.0.0.0 HOST_PORT=8080 \
    PORTAL_DIR=/app/portal
RUN useradd --system --uid 10001 --home-dir /app --create-home controlplane
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
COPY --from=portal /portal/build /app/portal
USER controlplane
WORKDIR /app
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD python -c "import os,urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HOST_PORT', '8080')).status != 200)"
CMD ["controlplane", "serve"]
