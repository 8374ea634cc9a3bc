-- Analyst views over the event log (all times UTC). Recreated on every open; history is in `events`.

-- One row per pool still present: its current state, counts and elastic settings.
CREATE OR REPLACE VIEW pool_current AS
SELECT pool_uuid,
       arg_max(json_extract_string(payload, '$.name'), seq) FILTER (WHERE type IN ('pool_discovered', 'pool_updated')) AS name,
       arg_max(json_extract_string(payload, '$.profile'), seq) FILTER (WHERE type IN ('pool_discovered', 'pool_updated')) AS profile,
       arg_max(state_to, seq) FILTER (WHERE type = 'state_changed') AS state,
       max(occurred_at) FILTER (WHERE type = 'state_changed') AS state_since,
       coalesce(arg_max(value_new, seq) FILTER (WHERE type = 'instances_changed'), 0)::INTEGER AS running_instances,
       coalesce(arg_max(value_new, seq) FILTER (WHERE type = 'cores_changed'), 0)::INTEGER AS running_cores,
       coalesce(arg_max(value_new, seq) FILTER (WHERE type = 'queued_changed'), 0)::INTEGER AS queued_or_running,
       arg_max(execution_seconds, seq) FILTER (WHERE execution_seconds IS NOT NULL) AS execution_seconds,
       arg_max(json_extract(payload, '$.new'), seq) FILTER (WHERE type = 'settings_changed') AS elastic_settings,
       max(recorded_at) AS last_change_at
FROM events
WHERE pool_uuid IS NOT NULL
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

-- Running slots (instances) and cores over time, one row per observed change.
CREATE OR REPLACE VIEW slot_timeline AS
SELECT pool_uuid, recorded_at AS "at", value_new::INTEGER AS running_instances, value_old::INTEGER AS previous
FROM events WHERE type = 'instances_changed';

CREATE OR REPLACE VIEW core_timeline AS
SELECT pool_uuid, recorded_at AS "at", value_new::INTEGER AS running_cores, value_old::INTEGER AS previous
FROM events WHERE type = 'cores_changed';

-- Core-seconds per pool per hour: executionTime readings, spread linearly between consecutive readings
-- (cores are constant between them, since every core change is itself a reading).
CREATE OR REPLACE VIEW core_seconds_hourly AS
WITH readings AS (
    SELECT pool_uuid, recorded_at AS t, max(execution_seconds) AS e
    FROM events WHERE execution_seconds IS NOT NULL GROUP BY pool_uuid, recorded_at
), pairs AS (
    SELECT pool_uuid, t, e, lead(t) OVER w AS t2, lead(e) OVER w AS e2
    FROM readings WINDOW w AS (PARTITION BY pool_uuid ORDER BY t)
), hours AS (
    SELECT pool_uuid, t, e, t2, e2,
           unnest(generate_series(date_trunc('hour', t), t2, INTERVAL 1 HOUR)) AS hour
    FROM pairs WHERE t2 IS NOT NULL AND e2 >= e
)
SELECT pool_uuid, hour,
       sum((e2 - e) * date_diff('microsecond', greatest(t, hour), least(t2, hour + INTERVAL 1 HOUR))
           / date_diff('microsecond', t, t2)) AS core_seconds
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
           CASE WHEN type = 'settings_changed' THEN json_extract(payload, '$.new') END AS s
    FROM events WHERE pool_uuid IS NOT NULL
), filled AS (
    SELECT pool_uuid, seq, "at",
           last_value(state IGNORE NULLS) OVER w AS state,
           coalesce(last_value(running_instances IGNORE NULLS) OVER w, 0)::INTEGER AS running_instances,
           coalesce(last_value(running_cores IGNORE NULLS) OVER w, 0)::INTEGER AS running_cores,
           coalesce(last_value(queued_or_running IGNORE NULLS) OVER w, 0)::INTEGER AS queued_or_running,
           last_value(s IGNORE NULLS) OVER w AS s
    FROM changes WINDOW w AS (PARTITION BY pool_uuid ORDER BY seq ROWS UNBOUNDED PRECEDING)
)
SELECT pool_uuid, "at", state, running_instances, running_cores, queued_or_running,
       (s->>'$.minTotalSlots')::INTEGER AS min_total_slots, (s->>'$.maxTotalSlots')::INTEGER AS max_total_slots,
       (s->>'$.minIdleSlots')::INTEGER AS min_idle_slots,
       (s->>'$.minIdleTimeSeconds')::INTEGER AS min_idle_time_seconds,
       (s->>'$.rampResizeFactor')::DOUBLE AS resize_factor, (s->>'$.resizePeriod')::INTEGER AS resize_period
FROM filled
QUALIFY row_number() OVER (PARTITION BY pool_uuid, "at" ORDER BY seq DESC) = 1;
