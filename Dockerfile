# One image for every SledFleet process (bridge, stream worker, sink, simulator, migrations,
# topic creation); docker-compose.yml picks the role with the command (`sledfleet <role>`).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY edge ./edge
COPY stream ./stream
COPY storage ./storage
COPY dashboards ./dashboards
RUN pip install '.[all]' \
 && useradd --system --create-home --home-dir /var/lib/sledfleet --uid 10001 sledfleet \
 && mkdir -p /var/lib/sledfleet/stream /var/lib/sledfleet/outbox \
 && chown -R sledfleet /var/lib/sledfleet

USER sledfleet
WORKDIR /var/lib/sledfleet
ENTRYPOINT ["sledfleet"]
CMD ["--help"]
