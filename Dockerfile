# The streams worker: Faust agents and tables, the web view on 6066, RocksDB state on a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/streams --no-create-home \
        --shell /usr/sbin/nologin streams

WORKDIR /src
COPY . .
# A shell test instead of a COPY glob keeps config/ optional on every builder. Files written into
# the fresh state folder give a new named volume its owner.
RUN pip install . \
    && mkdir -p /app /var/lib/streams \
    && if [ -d config ]; then cp -r config /app/config; fi \
    && chown streams:streams /var/lib/streams \
    && rm -rf /src

# The app reads config/streams.tusk relative to its working directory.
WORKDIR /app

# The web view must listen beyond the container's loopback to be published. SQLite and exports
# default to paths under the working directory, which the worker's user cannot write.
ENV STREAMS_WEB__HOST=0.0.0.0 \
    STREAMS_STATE__DATA_DIR=/var/lib/streams \
    STREAMS_EXPORTS__DIRECTORY=/var/lib/streams/exports \
    DATABASE_URL=sqlite:////var/lib/streams/streams.db

VOLUME /var/lib/streams
EXPOSE 6066
USER streams

# /health answers 503 while tables recover or a topic lags; the start period covers a first restore.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=8)"]

# Faust stops cleanly on SIGTERM; an unclean stop makes the next start rebuild the tables.
STOPSIGNAL SIGTERM
CMD ["faust", "-A", "streams.app", "worker", "-l", "info"]
