-- Price alerts set by the trader (alert_add) that fired: one "alert" envelope each (issue 13).
-- Order books ("book" envelopes) are never stored: the writer skips them.
CREATE TABLE IF NOT EXISTS price_alerts (
    ts          timestamptz NOT NULL,
    run         text        NOT NULL,
    seq         bigint      NOT NULL,
    alert_id    text        NOT NULL,
    code        text        NOT NULL,
    name        text        NOT NULL DEFAULT '',
    condition   text        NOT NULL,  -- above | below | change_pct
    threshold   double precision NOT NULL,  -- a price, or a signed percentage
    price       bigint      NOT NULL DEFAULT 0,  -- the last price that fired it
    change_pct  double precision NOT NULL DEFAULT 0,
    created_at  timestamptz,
    fired_at    timestamptz,
    message     text        NOT NULL DEFAULT '',
    PRIMARY KEY (run, seq)
);
CREATE INDEX IF NOT EXISTS price_alerts_ts ON price_alerts (ts DESC);
CREATE INDEX IF NOT EXISTS price_alerts_code ON price_alerts (code, ts DESC);
