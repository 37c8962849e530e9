# syntax=docker/dockerfile:1
# Build stage: wheels for Sluice and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip wheel
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY evaluators ./evaluators
COPY admin ./admin
COPY migrations ./migrations
COPY sluice_devtools ./sluice_devtools
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: only the installed wheels, run as an unprivileged user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SLUICE_HOST=0.0.0.0 SLUICE_PORT=8080 \
    SLUICE_DATABASE_URL=sqlite+aiosqlite:////data/sluice.db
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --create-home sluice
USER sluice
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
ENTRYPOINT ["sluice"]
CMD ["serve"]
