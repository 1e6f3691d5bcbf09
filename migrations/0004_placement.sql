-- Durable placement: which worker should run each job's deployment.
--
-- The control plane writes a row before it asks a worker to start; a worker
-- that (re)starts loads the rows placed on it and starts them again, so a
-- killed process does not lose its jobs. `epoch` goes up whenever the row is
-- given to another worker (failover) or claimed again by a restarted one;
-- checkpoint writes check it in their transaction, so a worker presumed dead
-- but still alive can no longer record a checkpoint.
CREATE TABLE runtime_placements (
    tenant      text        NOT NULL,
    job         text        NOT NULL,
    -- Id of the worker (`serve` for the one embedded in `weir serve`).
    worker      text        NOT NULL,
    -- The runtime's DeploymentRequest, as JSON.
    request     jsonb       NOT NULL,
    generation  bigint      NOT NULL,
    epoch       bigint      NOT NULL DEFAULT 1,
    -- `running` or `stopped`.
    desired     text        NOT NULL CHECK (desired IN ('running', 'stopped')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, job)
);
CREATE INDEX runtime_placements_by_worker ON runtime_placements (worker)
    WHERE desired = 'running';
