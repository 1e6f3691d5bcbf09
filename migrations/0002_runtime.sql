-- The stream runtime: deployment fencing and checkpoints.

-- The newest generation of each job's deployment. Checkpoint writes check it
-- in their transaction, so a stale worker (older generation) can never record
-- a checkpoint after a newer deployment started.
CREATE TABLE runtime_deployments (
    tenant      text        NOT NULL,
    job         text        NOT NULL,
    generation  bigint      NOT NULL,
    version     integer     NOT NULL,
    parallelism integer     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, job)
);

-- One row per completed checkpoint of a job. `seq` orders them.
CREATE TABLE runtime_checkpoints (
    id           text        PRIMARY KEY,
    seq          bigserial   NOT NULL UNIQUE,
    tenant       text        NOT NULL,
    job          text        NOT NULL,
    version      integer     NOT NULL,
    generation   bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    state_bytes  bigint      NOT NULL,
    duration_ms  integer     NOT NULL,
    trigger      text        NOT NULL
);
CREATE INDEX runtime_checkpoints_by_job ON runtime_checkpoints (tenant, job, seq DESC);

-- Per source partition: where to resume, the keyed state of every operator
-- for that partition, the event-time watermark, and the sink end offsets the
-- owning task measured (deterministic replay scans the sink from there).
CREATE TABLE runtime_checkpoint_partitions (
    checkpoint_id text    NOT NULL REFERENCES runtime_checkpoints (id) ON DELETE CASCADE,
    topic         text    NOT NULL,
    partition     integer NOT NULL,
    next_offset   bigint  NOT NULL,
    watermark     bigint,
    sink_offsets  jsonb   NOT NULL,
    state         bytea   NOT NULL,
    PRIMARY KEY (checkpoint_id, topic, partition)
);
