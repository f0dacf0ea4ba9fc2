# The "engine" service of docker-compose.yml's "rest" profile: the headless
# engine with the kiwoom_rest broker (Kiwoom's REST + WebSocket API), on the VM
# next to Redis. Built from the repository root:
#   docker compose --profile rest build engine
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QT_QPA_PLATFORM=offscreen

# Only what the engine imports at run time: PyQt5's QtCore (the engine's event
# loop; QtCore needs glib), redis, and httpx + websockets for Kiwoom's REST API.
ARG ENGINE_DEPS="PyQt5>=5.15,<5.16 redis>=5.0 httpx>=0.27 websockets>=13"

WORKDIR /src
COPY . /src
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends libglib2.0-0; \
    rm -rf /var/lib/apt/lists/*; \
    test -f README.md || echo "kiwoom-console" > README.md; \
    pip install $ENGINE_DEPS; \
    pip install --no-deps /src; \
    rm -rf /src; \
    useradd --system --no-create-home --shell /usr/sbin/nologin kc; \
    python -c "import PyQt5.QtCore, httpx, websockets, engine32.brokers.kiwoom_rest"

WORKDIR /home/kc
USER kc
CMD ["kc", "engine", "--broker", "kiwoom_rest"]
