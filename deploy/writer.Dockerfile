# The "writer" service of docker-compose.yml: `kc writer` persists the
# kc:events stream into TimescaleDB. Built from the repository root:
#   docker compose build writer
# (deploy/writer.Dockerfile.dockerignore keeps the build context small.)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the writer needs at run time. The project's full dependency list
# also holds the Windows engine's and the TUI's (PyQt5, Textual, pandas),
# which the writer never imports, so the package goes in with --no-deps.
ARG WRITER_DEPS="redis>=5.0 asyncpg>=0.29"

WORKDIR /src
COPY . /src
RUN set -eux; \
    test -f README.md || echo "kiwoom-console" > README.md; \
    pip install $WRITER_DEPS; \
    pip install --no-deps /src; \
    rm -rf /src; \
    useradd --system --no-create-home --shell /usr/sbin/nologin kc; \
    python -c "import core.config"

WORKDIR /home/kc
USER kc
CMD ["kc", "writer"]
