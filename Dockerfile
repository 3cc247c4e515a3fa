# wechaty-exporter: one image for every part: `serve` (the exporter), `receiver`, `bot` (the peer
# bot, python-wechaty included), `replay`, `check-config`. deploy/docker-compose.yml runs a whole
# duet with it; docs/operations.md#docker explains the volumes and log paths.
#
#   docker build -t wechaty-exporter .
#   docker run --rm -p 127.0.0.1:9839:9839 -v /srv/bots/logs:/logs:ro wechaty-exporter \
#       serve --log alice=/logs/alice.log --web.listen-address 0.0.0.0:9839

# Build wheels in a throwaway stage, so no build tooling or source tree ends up in the image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[bot]"

FROM python:3.11-slim
# A fixed, unprivileged uid/gid: give it read access to bind-mounted logs (docs/operations.md).
RUN groupadd --system --gid 10001 wechaty \
    && useradd --system --uid 10001 --gid wechaty --no-create-home \
        --home-dir /var/lib/wechaty-exporter --shell /usr/sbin/nologin wechaty \
    && install -d -o wechaty -g wechaty -m 0700 /var/lib/wechaty-exporter \
    && install -d -o wechaty -g wechaty -m 0750 /var/log/wechaty-exporter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "wechaty-exporter[bot]" \
    && rm -rf /wheels
USER wechaty:wechaty
WORKDIR /var/lib/wechaty-exporter
# State (read positions, bot states, delivery records) survives container restarts in a volume.
ENV PYTHONUNBUFFERED=1 \
    WECHATY_EXPORTER_STATE_DIR=/var/lib/wechaty-exporter
VOLUME ["/var/lib/wechaty-exporter"]
# 9839 exporter, 9840 receiver / peer bot webhook
EXPOSE 9839 9840
ENTRYPOINT ["wechaty-exporter"]
CMD ["--help"]
