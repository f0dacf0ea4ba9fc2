"""Redis going away and coming back: banner, backoff, and a view rebuilt from the snapshot."""

from __future__ import annotations

import pytest
import redis
import tui_seed
from tui_helpers import make_config, until

from core.devservers import RedisServer
from tui.app import KiwoomConsole
from tui.widgets.status import Banner

pytestmark = pytest.mark.timeout(90)


async def test_redis_lost_banner_then_reconnect_and_rebuild(tmp_path) -> None:
    server = RedisServer(tmp_path / "r1").start()
    port = server.port
    client = redis.Redis(port=port)
    tui_seed.seed(client, "rc")
    app = KiwoomConsole(make_config(server.url, "rc"), poll_s=0.25)
    again = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(
                pilot.pause, lambda: app.store.status.redis_up and app.store.quotes, 10, "connected"
            )
            banner = app.screen.query_one(Banner)
            await pilot.pause(0.3)
            assert not banner.display
            server.stop()
            await until(pilot.pause, lambda: not app.store.status.redis_up, 10, "the loss noticed")
            await pilot.pause(0.3)
            assert banner.display and "REDIS UNREACHABLE" in str(banner.render())
            assert "REDIS DOWN" in str(app.screen.query_one("#status").render())
            # Redis comes back (empty: a restarted server) and the engine rewrites its state.
            again = RedisServer(tmp_path / "r2", port=port).start()
            client = redis.Redis(port=port)
            tui_seed.seed(client, "rc", seq=500)
            client.hset(
                "rc:state:quotes", "005930", '{"code":"005930","price":70000,"change":-300}'
            )
            await until(pilot.pause, lambda: app.store.status.redis_up, 15, "the reconnect")
            await until(
                pilot.pause, lambda: app.store.last_price("005930") == 70000, 10, "the new snapshot"
            )
            assert app.store.last_seq == 500
            await pilot.pause(0.3)
            assert not banner.display
    finally:
        server.stop()
        if again is not None:
            again.stop()
