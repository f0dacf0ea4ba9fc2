"""The gateway's parts on their own: tokens, routes, the per-connection outbox, the config."""

from __future__ import annotations

import asyncio

import pytest

from core.config import ConfigError, load_config
from core.gateway.auth import TokenError, TokenStore, digest, hash_line
from core.gateway.outbox import Item, Outbox
from core.gateway.routes import channel_of_path, channels_for, is_droppable

T1 = "token-one-0123456789abcdef"
T2 = "token-two-0123456789abcdef"


def test_tokens_clear_and_hashed_forms_from_file_and_environment(tmp_path):
    f = tmp_path / "tokens"
    f.write_text("# phones\nphone:read:{}\n\n{}\n".format(T1, hash_line("bot", "trade", T2)))
    store = TokenStore.load(str(f), environ={"KC_GATEWAY_TOKENS": "tab:read:" + "t" * 20})
    assert len(store) == 3
    assert store.check(T1).name == "phone" and not store.check(T1).can_trade
    assert store.check(T2).name == "bot" and store.check(T2).can_trade
    assert store.check("t" * 20).name == "tab"
    for wrong in (None, "", T1[:-1], T1 + "x", "sha256:" + digest(T2).hex()):
        assert store.check(wrong) is None
    # Only digests are kept: no token is anywhere in the store.
    assert T1 not in repr(store.__dict__) and T2 not in repr(store.__dict__)


@pytest.mark.parametrize(
    "text, message",
    [
        ("phone:write:" + T1, "scope must be read or trade"),
        ("phone:read:short", "shorter than 16"),
        ("bad name:read:" + T1, "name:scope:token"),
        ("a:read:{}\na:read:{}".format(T1, T2), "used twice"),
        ("change-me-gateway-tokens", "example value"),
    ],
)
def test_bad_token_lines_are_refused_without_showing_the_token(text, message):
    with pytest.raises(TokenError) as info:
        TokenStore.parse(text, "tokens")
    assert message in str(info.value)
    assert T1 not in str(info.value)


def test_unreadable_tokens_file_is_a_clear_error(tmp_path):
    with pytest.raises(TokenError, match="cannot read"):
        TokenStore.load(str(tmp_path / "missing"), environ={})


def test_routes_known_and_future_topics():
    assert channels_for("quotes") == ("market",)
    assert channels_for("fill") == ("orders",) and channels_for("reply") == ("orders",)
    assert channels_for("account") == ("positions",)
    assert channels_for("trigger") == ("surge",) and channels_for("alert") == ("surge",)
    assert channels_for("book") == ("market",) and channels_for("quotes_l2") == ("market",)
    assert set(channels_for("status")) == {"market", "orders", "positions", "surge"}
    assert channels_for("log") == () and channels_for("whatever") == ()
    assert is_droppable("quotes") and is_droppable("book")
    assert not any(is_droppable(t) for t in ("order", "fill", "reply", "position", "status"))
    assert channel_of_path("/ws/market") == "market" and channel_of_path("/ws/commands/")
    assert channel_of_path("/ws/nothing") is None and channel_of_path("/market") is None


async def test_outbox_drops_quotes_first_and_overflows_only_on_essentials():
    box = Outbox(limit=3)
    assert box.put(Item("q1", True, count=10))
    assert box.put(Item("o1", False))
    assert box.put(Item("q2", True, count=5))
    assert box.put(Item("q3", True, count=7))  # full: the arriving quote is dropped
    assert box.put(Item("o2", False))  # full: evicts the oldest quote (q1)
    assert box.take_drop_report() == (2, 17)
    assert [(await box.get()).text for _ in range(3)] == ["o1", "q2", "o2"]
    assert box.put(Item("o3", False)) and box.put(Item("o4", False)) and box.put(Item("o5", False))
    assert not box.put(Item("o6", False)) and box.overflowing  # nothing left to drop
    assert len(box) == 3 and box.total_dropped_quotes == 17
    waiter = asyncio.ensure_future(Outbox(1).get())
    await asyncio.sleep(0)
    assert not waiter.done()
    waiter.cancel()


def test_gateway_config_section(tmp_path):
    (tmp_path / "none.toml").write_text("")
    cfg = load_config(tmp_path / "none.toml", environ={})
    assert cfg.gateway.listen == "127.0.0.1:8765" and cfg.gateway.trade is False
    cfg = load_config(
        tmp_path / "none.toml",
        environ={"KC_GATEWAY__LISTEN": "[::1]:9000", "KC_GATEWAY__TRADE": "true"},
    )
    assert cfg.gateway.listen == "[::1]:9000" and cfg.gateway.trade is True
    for bad in ("8765", "host:99999", "a b:1"):
        with pytest.raises(ConfigError, match=r"\[gateway\] listen"):
            load_config(tmp_path / "none.toml", environ={"KC_GATEWAY__LISTEN": bad})
    with pytest.raises(ConfigError, match=r"\[gateway\] queue_max"):
        load_config(tmp_path / "none.toml", environ={"KC_GATEWAY__QUEUE_MAX": "0"})


async def test_outbox_is_bounded_in_bytes_too():
    box = Outbox(limit=100, max_bytes=1000)
    for k in range(5):
        assert box.put(Item("q" * 300, True, seq=k, count=1))
    assert len(box) == 3 and box.bytes == 900  # the 4th and 5th batches were dropped
    assert box.put(Item("o" * 400, False))  # evicts quotes until it fits
    assert box.bytes == 1000 and box.total_dropped_quotes == 3
    assert box.put(Item("p" * 900, False))  # no quote left: over the soft bound, under 2x
    assert not box.put(Item("r" * 900, False)) and box.overflowing
    while len(box):
        await box.get()
    assert box.bytes == 0
