-- Analyst views over the event log (all times UTC). Recreated on every open; history is in `events`.

-- Each pool's static properties as last recorded (slots per node: 1 where the API never said).
CREATE OR REPLACE VIEW pool_meta AS
SELECT pool_uuid,
       arg_max(json_extract_string(payload, '$.name'), seq) AS name,
       arg_max(json_extract_string(payload, '$.profile'), seq) AS profile,
       arg_max(json_extract_string(payload, '$.scheduling_type'), seq) AS scheduling_type,
       coalesce(arg_max((payload->>'$.slots_per_node')::INTEGER, seq), 1) AS slots_per_node
FROM events WHERE type IN ('pool_discovered', 'pool_updated')
GROUP BY pool_uuid;

-- One row per pool still present: its current state, counts (running slots = instances x slots per
-- node), scaling policies and the active one, and legacy elastic settings.
CREATE OR REPLACE VIEW pool_current AS
SELECT pool_uuid,
       any_value(m.name) AS name,
       any_value(m.profile) AS profile,
       any_value(m.scheduling_type) AS scheduling_type,
       arg_max(state_to, seq) FILTER (WHERE type = 'state_changed') AS state,
       max(occurred_at) FILTER (WHERE type = 'state_changed') AS state_since,
       coalesce(arg_max(value_new, seq) FILTER (WHERE type = 'instances_changed'), 0)::INTEGER AS running_instances,
       any_value(m.slots_per_node) AS slots_per_node,
       (coalesce(arg_max(value_new, seq) FILTER (WHERE type = 'instances_changed'), 0)
        * any_value(m.slots_per_node))::INTEGER AS running_slots,
       coalesce(arg_max(value_new, seq) FILTER (WHERE type = 'cores_changed'), 0)::INTEGER AS running_cores,
       coalesce(arg_max(value_new, seq) FILTER (WHERE type = 'queued_changed'), 0)::INTEGER AS queued_or_running,
       arg_max(execution_seconds, seq) FILTER (WHERE execution_seconds IS NOT NULL) AS execution_seconds,
       arg_max(json_extract(payload, '$.new'), seq) FILTER (WHERE type = 'settings_changed') AS elastic_settings,
       arg_max(json_extract(payload, '$.new'), seq) FILTER (WHERE type = 'scaling_changed') AS scaling,
       arg_max(json_extract_string(payload, '$.to'), seq) FILTER (WHERE type = 'scaling_policy_activated') AS active_policy,
       max(recorded_at) AS last_change_at
FROM events LEFT JOIN pool_meta m USING (pool_uuid)
WHERE pool_uuid IS NOT NULL AND type NOT IN ('pool_unreadable', 'pool_readable') AND type NOT LIKE 'task\_%' ESCAPE '\'
GROUP BY pool_uuid
HAVING count(*) FILTER (WHERE type = 'pool_vanished') = 0
    OR max(seq) FILTER (WHERE type = 'pool_discovered') > max(seq) FILTER (WHERE type = 'pool_vanished');

-- Each state a pool was in, from its transition to the next (end NULL while it lasts).
CREATE OR REPLACE VIEW state_intervals AS
WITH marks AS (
    SELECT pool_uuid, seq, type, state_to AS state, occurred_at AS start
    FROM events WHERE type IN ('state_changed', 'pool_vanished')
), spans AS (
    SELECT *, lead(start) OVER (PARTITION BY pool_uuid ORDER BY seq) AS "end" FROM marks
)
SELECT pool_uuid, state, start, "end", date_diff('millisecond', start, "end") / 1000.0 AS seconds
FROM spans WHERE type = 'state_changed';

-- Running instances (nodes), slots (instances x slots per node) and cores over time, one row per
-- observed change.
CREATE OR REPLACE VIEW slot_timeline AS
SELECT pool_uuid, recorded_at AS "at", value_new::INTEGER AS running_instances, value_old::INTEGER AS previous,
       (value_new * coalesce(m.slots_per_node, 1))::INTEGER AS running_slots
FROM events LEFT JOIN pool_meta m USING (pool_uuid) WHERE type = 'instances_changed';

CREATE OR REPLACE VIEW core_timeline AS
SELECT pool_uuid, recorded_at AS "at", value_new::INTEGER AS running_cores, value_old::INTEGER AS previous
FROM events WHERE type = 'cores_changed';

-- Core-seconds per pool per hour, from the running-core timeline (`executionTime` is Qarnot's own
-- figure, not core-seconds). A change seen by a poll happened since the previous successful poll: it is
-- placed halfway between the two, which halves the worst error and leaves none on average. A pool holds
-- its cores until it vanishes or, while it lasts, until the last successful poll.
CREATE OR REPLACE VIEW core_seconds_hourly AS
WITH ok AS (
    SELECT poll_id, finished_at, lag(finished_at) OVER (ORDER BY poll_id) AS previous_at
    FROM polls WHERE outcome = 'ok'
), steps AS (
    SELECT e.pool_uuid, e.seq,
           CASE WHEN ok.previous_at IS NULL THEN e.recorded_at
                ELSE ok.previous_at + (e.recorded_at - ok.previous_at) / 2 END AS t,
           CASE WHEN e.type = 'pool_vanished' THEN 0 ELSE e.value_new END AS cores
    FROM events e LEFT JOIN ok USING (poll_id)
    WHERE e.type IN ('cores_changed', 'pool_vanished')
), spans AS (
    SELECT pool_uuid, t, cores,
           coalesce(lead(t) OVER (PARTITION BY pool_uuid ORDER BY seq),
                    (SELECT max(finished_at) FROM polls WHERE outcome = 'ok')) AS t2
    FROM steps
), hours AS (
    SELECT pool_uuid, t, t2, cores, unnest(generate_series(date_trunc('hour', t), t2, INTERVAL 1 HOUR)) AS hour
    FROM spans WHERE cores > 0 AND t2 > t
)
SELECT pool_uuid, hour,
       sum(cores * date_diff('microsecond', greatest(t, hour), least(t2, hour + INTERVAL 1 HOUR)) / 1e6)
           AS core_seconds
FROM hours WHERE least(t2, hour + INTERVAL 1 HOUR) > greatest(t, hour)
GROUP BY pool_uuid, hour;

-- Stretches between two successful polls, with the failed polls inside them: "no data", not "no change".
CREATE OR REPLACE VIEW observation_gaps AS
WITH ok AS (
    SELECT poll_id, finished_at, lead(poll_id) OVER (ORDER BY poll_id) AS next_id,
           lead(finished_at) OVER (ORDER BY poll_id) AS next_at
    FROM polls WHERE outcome = 'ok'
)
SELECT ok.finished_at AS gap_start, ok.next_at AS gap_end,
       date_diff('millisecond', ok.finished_at, ok.next_at) / 1000.0 AS seconds,
       count(f.poll_id) AS failed_polls, string_agg(DISTINCT f.outcome, ', ') AS reasons
FROM ok LEFT JOIN polls f ON f.poll_id > ok.poll_id AND f.poll_id < ok.next_id
WHERE ok.next_id IS NOT NULL
GROUP BY ALL;

-- A pool's step-function history: the values in force after each change (policies, back-testing).
CREATE OR REPLACE VIEW pool_history AS
WITH changes AS (
    SELECT pool_uuid, seq, recorded_at AS "at",
           CASE WHEN type = 'state_changed' THEN state_to END AS state,
           CASE WHEN type = 'instances_changed' THEN value_new END AS running_instances,
           CASE WHEN type = 'cores_changed' THEN value_new END AS running_cores,
           CASE WHEN type = 'queued_changed' THEN value_new END AS queued_or_running,
           CASE WHEN type = 'settings_changed' THEN json_extract(payload, '$.new') END AS s,
           CASE WHEN type = 'scaling_changed' THEN json_extract(payload, '$.new') END AS scaling
    FROM events WHERE pool_uuid IS NOT NULL AND type NOT LIKE 'task\_%' ESCAPE '\'
), filled AS (
    SELECT pool_uuid, seq, "at",
           last_value(state IGNORE NULLS) OVER w AS state,
           coalesce(last_value(running_instances IGNORE NULLS) OVER w, 0)::INTEGER AS running_instances,
           coalesce(last_value(running_cores IGNORE NULLS) OVER w, 0)::INTEGER AS running_cores,
           coalesce(last_value(queued_or_running IGNORE NULLS) OVER w, 0)::INTEGER AS queued_or_running,
           last_value(s IGNORE NULLS) OVER w AS s,
           last_value(scaling IGNORE NULLS) OVER w AS scaling
    FROM changes WINDOW w AS (PARTITION BY pool_uuid ORDER BY seq ROWS UNBOUNDED PRECEDING)
)
SELECT pool_uuid, "at", state, running_instances,
       (running_instances * coalesce(m.slots_per_node, 1))::INTEGER AS running_slots, running_cores, queued_or_running,
       (s->>'$.minTotalSlots')::INTEGER AS min_total_slots, (s->>'$.maxTotalSlots')::INTEGER AS max_total_slots,
       (s->>'$.minIdleSlots')::INTEGER AS min_idle_slots,
       (s->>'$.minIdleTimeSeconds')::INTEGER AS min_idle_time_seconds,
       (s->>'$.rampResizeFactor')::DOUBLE AS resize_factor, (s->>'$.resizePeriod')::INTEGER AS resize_period,
       scaling
FROM filled LEFT JOIN pool_meta m USING (pool_uuid)
QUALIFY row_number() OVER (PARTITION BY pool_uuid, "at" ORDER BY seq DESC) = 1;

-- Euros per pool per hour: credits checkpoints (cumulative), spread linearly between consecutive ones.
CREATE OR REPLACE VIEW cost_hourly AS
WITH pairs AS (
    SELECT pool_uuid, recorded_at AS t, value_new AS v, lead(recorded_at) OVER w AS t2, lead(value_new) OVER w AS v2
    FROM events WHERE type = 'credits_checkpointed' WINDOW w AS (PARTITION BY pool_uuid ORDER BY seq)
), hours AS (
    SELECT *, unnest(generate_series(date_trunc('hour', t), t2, INTERVAL 1 HOUR)) AS hour
    FROM pairs WHERE t2 > t AND v2 >= v
)
SELECT pool_uuid, hour,
       sum((v2 - v) * date_diff('microsecond', greatest(t, hour), least(t2, hour + INTERVAL 1 HOUR))
           / date_diff('microsecond', t, t2)) AS euros
FROM hours WHERE least(t2, hour + INTERVAL 1 HOUR) > greatest(t, hour)
GROUP BY pool_uuid, hour;

-- Energy (Wh), reused heat (Wh) and footprint (gCO2eq) per pool per hour, from carbon-facts checkpoints.
CREATE OR REPLACE VIEW carbon_hourly AS
WITH readings AS (
    SELECT pool_uuid, seq, recorded_at AS t, (payload->>'$.energy_wh')::DOUBLE AS wh,
           coalesce((payload->>'$.reused_energy_wh')::DOUBLE, 0) AS reused, (payload->>'$.carbon_g')::DOUBLE AS g
    FROM events WHERE type = 'carbon_checkpointed'
), pairs AS (
    SELECT pool_uuid, t, lead(t) OVER w AS t2, lead(wh) OVER w - wh AS wh, lead(reused) OVER w - reused AS reused,
           lead(g) OVER w - g AS g
    FROM readings WINDOW w AS (PARTITION BY pool_uuid ORDER BY seq)
), hours AS (
    SELECT *, unnest(generate_series(date_trunc('hour', t), t2, INTERVAL 1 HOUR)) AS hour,
           date_diff('microsecond', t, t2) AS span
    FROM pairs WHERE t2 > t AND wh >= 0
)
SELECT pool_uuid, hour,
       sum(wh * date_diff('microsecond', greatest(t, hour), least(t2, hour + INTERVAL 1 HOUR)) / span) AS energy_wh,
       sum(reused * date_diff('microsecond', greatest(t, hour), least(t2, hour + INTERVAL 1 HOUR)) / span) AS reused_wh,
       sum(g * date_diff('microsecond', greatest(t, hour), least(t2, hour + INTERVAL 1 HOUR)) / span) AS carbon_g
FROM hours WHERE least(t2, hour + INTERVAL 1 HOUR) > greatest(t, hour)
GROUP BY pool_uuid, hour;

-- What a slot-hour actually costs and emits on this account, per scheduling type: the euros (credits
-- checkpoints) and gCO2eq (carbon-facts checkpoints) a pool consumed between two checkpoints, over the
-- running slot-hours in between. No price list exists; this is what the account paid.
CREATE OR REPLACE VIEW figures_per_slot_hour AS
WITH checkpoints AS (
    SELECT pool_uuid, type, recorded_at AS t, lead(recorded_at) OVER w AS t2,
           lead(CASE WHEN type = 'credits_checkpointed' THEN value_new ELSE (payload->>'$.carbon_g')::DOUBLE END) OVER w
           - CASE WHEN type = 'credits_checkpointed' THEN value_new ELSE (payload->>'$.carbon_g')::DOUBLE END AS amount
    FROM events WHERE type IN ('credits_checkpointed', 'carbon_checkpointed')
    WINDOW w AS (PARTITION BY pool_uuid, type ORDER BY seq)
), slots AS (
    SELECT pool_uuid, "at" AS s, lead("at") OVER (PARTITION BY pool_uuid ORDER BY "at") AS s2, running_slots
    FROM slot_timeline
), spans AS (
    SELECT c.pool_uuid, c.type, c.amount,
           sum(coalesce(s.running_slots, 0) * date_diff('microsecond', greatest(c.t, s.s), least(c.t2, coalesce(s.s2, c.t2)))
               / 3.6e9) AS slot_hours
    FROM checkpoints c JOIN slots s ON s.pool_uuid = c.pool_uuid AND s.s < c.t2 AND coalesce(s.s2, c.t2) > c.t
    WHERE c.t2 IS NOT NULL AND c.amount >= 0
    GROUP BY c.pool_uuid, c.type, c.t, c.amount
)
SELECT coalesce(m.scheduling_type, 'unknown') AS scheduling_type,
       sum(amount) FILTER (WHERE type = 'credits_checkpointed') AS euros,
       sum(slot_hours) FILTER (WHERE type = 'credits_checkpointed') AS slot_hours,
       sum(amount) FILTER (WHERE type = 'credits_checkpointed')
           / nullif(sum(slot_hours) FILTER (WHERE type = 'credits_checkpointed'), 0) AS euros_per_slot_hour,
       sum(amount) FILTER (WHERE type = 'carbon_checkpointed') AS gco2eq,
       sum(amount) FILTER (WHERE type = 'carbon_checkpointed')
           / nullif(sum(slot_hours) FILTER (WHERE type = 'carbon_checkpointed'), 0) AS gco2eq_per_slot_hour
FROM spans LEFT JOIN pool_meta m USING (pool_uuid)
GROUP BY ALL;

CREATE OR REPLACE VIEW price_per_slot_hour AS
SELECT scheduling_type, euros, slot_hours, euros_per_slot_hour FROM figures_per_slot_hour WHERE euros IS NOT NULL;

-- One row per task of a tracked pool, from the tasks collector's events (see tracker/tasks.py): created is
-- the API's creationDate, started when its first instance started, ended its endDate. wait_seconds runs
-- from creation to the first start; run_seconds is each instance's mean run time (execution time of all
-- instances / instances). state: the final state, or Running / Waiting while it lasts.
CREATE OR REPLACE VIEW tasks AS
SELECT payload->>'$.task' AS task_uuid,
       arg_max(pool_uuid, seq) AS pool_uuid,
       arg_max(payload->>'$.name', seq) FILTER (WHERE type = 'task_submitted') AS name,
       coalesce(arg_max(state_to, seq) FILTER (WHERE type = 'task_finished'),
                CASE WHEN count(*) FILTER (WHERE type = 'task_started') > 0 THEN 'Running' ELSE 'Waiting' END) AS state,
       min(occurred_at) FILTER (WHERE type = 'task_submitted') AS created,
       min(occurred_at) FILTER (WHERE type = 'task_started') AS started,
       max(occurred_at) FILTER (WHERE type = 'task_finished') AS ended,
       max(value_new)::INTEGER AS instances,
       date_diff('microsecond', min(occurred_at) FILTER (WHERE type = 'task_submitted'),
                 min(occurred_at) FILTER (WHERE type = 'task_started')) / 1e6 AS wait_seconds,
       max((payload->>'$.run_seconds')::DOUBLE) FILTER (WHERE type = 'task_finished') AS run_seconds,
       max(execution_seconds) FILTER (WHERE type = 'task_finished') AS instance_seconds
FROM events WHERE type IN ('task_submitted', 'task_started', 'task_finished')
GROUP BY 1;
