# supportbot in a container. With PostgreSQL: `docker compose up` (compose.yaml). Alone, on SQLite:
#   docker build -t supportbot .
#   docker run -d -p 8080:8080 -v supportbot-data:/data --env-file .env --stop-timeout 30 supportbot
# Other commands run the same way: docker run --rm -v supportbot-data:/data supportbot db backup /data/b.db
# The image is not built in CI (no Docker there); tests/test_deploy_files.py checks that its build and
# start commands are the ones the test suite runs (tests/test_install_from_wheel.py).

# The wheel, built the way the tests build it.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md components.yml .env.example LICENSE* ./
COPY kb/ kb/
COPY bot/ bot/
COPY storage/ storage/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=wheel /wheels /wheels
# The dependencies at the versions the tests last passed with (constraints.txt), as `make` installs.
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt /wheels/supportbot-*.whl \
    && rm -rf /wheels /tmp/constraints.txt \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin supportbot \
    && mkdir /data && chown supportbot:supportbot /data
# The sample knowledge base and components; mount your own over them (-v ./kb:/app/kb:ro).
RUN supportbot init /app && rm /app/.env
WORKDIR /app
ENV DATABASE_URL=sqlite+aiosqlite:////data/supportbot.db \
    KB_PATH=/app/kb \
    COMPONENTS_FILE=/app/components.yml \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8080
VOLUME ["/data"]
EXPOSE 8080
USER supportbot
# Liveness without curl (the slim image has none): /healthz answers 503 when the database is down.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WEB_PORT', '8080') + '/healthz', timeout=4)"]
# Exec form: supportbot is PID 1 and gets SIGTERM itself; it finishes the work in hand and exits.
# Give it longer than its own grace (--stop-timeout 30, compose's stop_grace_period): Docker's
# default of 10 s may cut a drain short. It starts no child processes, so it needs no --init.
STOPSIGNAL SIGTERM
ENTRYPOINT ["supportbot"]
CMD ["run"]
