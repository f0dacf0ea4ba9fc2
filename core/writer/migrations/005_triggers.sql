-- Triggers (issue 14): every change of a stop, take-profit or trailing stop held by the engine
-- (a "trigger" event on P:ev:trigger), in the audit trail next to the commands and orders.
CREATE TABLE IF NOT EXISTS triggers (
    ts             timestamptz NOT NULL,
    run            text        NOT NULL,
    seq            bigint      NOT NULL,
    trigger_id     text        NOT NULL,
    code           text        NOT NULL,
    side           text        NOT NULL,
    kind           text        NOT NULL,
    status         text        NOT NULL,
    qty            text        NOT NULL,  -- a number of shares, or "position"
    trigger_price  bigint      NOT NULL DEFAULT 0,
    level          bigint      NOT NULL DEFAULT 0,  -- the price that fires it (trailing: from the mark)
    mark           bigint      NOT NULL DEFAULT 0,
    oco            text        NOT NULL DEFAULT '',
    cmd_id         text        NOT NULL DEFAULT '',  -- trg-<trigger_id>-<n> once firing
    order_id       text        NOT NULL DEFAULT '',
    outcome        text        NOT NULL DEFAULT '',
    reason         text        NOT NULL DEFAULT '',
    data           jsonb       NOT NULL,  -- the whole trigger as published
    PRIMARY KEY (run, seq)
);
CREATE INDEX IF NOT EXISTS triggers_trigger_id ON triggers (trigger_id, ts);
CREATE INDEX IF NOT EXISTS triggers_ts ON triggers (ts DESC);
