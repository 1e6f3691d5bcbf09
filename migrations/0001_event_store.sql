-- The event store. Every aggregate (job, module, workflow run) is a stream;
-- nothing here is specific to jobs.

-- One row per stream: its version (for expected-version checks) and a snapshot
-- of the folded state, written in the same transaction as the events, so it is
-- never stale. The snapshot is an optimisation: state can always be rebuilt.
CREATE TABLE streams (
    tenant      text        NOT NULL,
    stream_id   text        NOT NULL,
    kind        text        NOT NULL,
    version     bigint      NOT NULL CHECK (version > 0),
    snapshot    jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, stream_id)
);
CREATE INDEX streams_by_kind ON streams (tenant, kind, stream_id);

-- The log. `position` is global, gap-free and in commit order: it is taken
-- from `event_position` last in each transaction, whose row lock serialises
-- that final step, so a reader following positions never skips a late commit.
CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    tenant          text        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_type      text        NOT NULL,
    payload         jsonb       NOT NULL,
    command_id      uuid,
    actor           text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, stream_id, stream_version)
);
CREATE INDEX events_by_tenant ON events (tenant, position);

CREATE TABLE event_position (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last      bigint  NOT NULL
);
INSERT INTO event_position (only_row, last) VALUES (true, 0);

-- Command deduplication. Never expires. Keyed by tenant too, so one tenant
-- can never read another's outcome by guessing a command id.
CREATE TABLE commands (
    tenant       text        NOT NULL,
    command_id   uuid        NOT NULL,
    kind         text        NOT NULL,
    target       text        NOT NULL,
    outcome      jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, command_id)
);

-- The outbox is the event log itself: relays keep a cursor (a position) per
-- destination. Positions are gap-free and in commit order, so "everything
-- after the cursor" is exactly what has not been published yet.
CREATE TABLE outbox_cursors (
    relay     text   PRIMARY KEY,
    position  bigint NOT NULL
);
