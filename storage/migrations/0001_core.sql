-- SledFleet core schema: registry, training facts, machine telemetry, alerts, outcomes.
--
-- One file for both flavours. Lines between "-- [timescale]" and "-- [end]" run only on
-- TimescaleDB, lines between "-- [postgres]" and "-- [end]" only on plain PostgreSQL
-- (storage/migrate.py renders them). Times are timestamptz converted from the records'
-- epoch nanoseconds (the *_ns columns are kept: they are part of the natural keys).
--
-- Hypertables / partitioned tables need their time column in every unique index, so each
-- natural key from stream/records.py NATURAL_KEYS is extended by a time column that is a
-- deterministic function of the record (a duplicate carries the same time): the natural
-- key still deduplicates.

CREATE SCHEMA IF NOT EXISTS sledfleet;

-- epoch nanoseconds -> timestamptz (microsecond precision, exact integer arithmetic)
CREATE FUNCTION sledfleet.ns_to_ts(ns bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT '1970-01-01 00:00:00+00'::timestamptz + (ns / 1000) * INTERVAL '1 microsecond' $$;

-- ---------------------------------------------------------------- registry
CREATE TABLE sledfleet.clinics (
    clinic_id   text PRIMARY KEY,
    name        text,
    first_seen  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sledfleet.machines (
    machine_id      text PRIMARY KEY,
    clinic_id       text NOT NULL REFERENCES sledfleet.clinics,
    model           text,
    serial          text,
    agent_version   text,
    firmware        text,
    config_version  bigint,
    rate_hz         double precision,
    clock_offset_ms double precision,
    online          boolean,
    status_at       timestamptz,          -- time of the status that set "online"
    last_seen       timestamptz,          -- latest data time seen from this machine
    frames          bigint,
    frames_missing  bigint,
    frames_replayed bigint,
    edge_dropped    bigint,
    first_seen      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX machines_clinic_idx ON sledfleet.machines (clinic_id);

CREATE TABLE sledfleet.patients (
    patient_id  text PRIMARY KEY,       -- pseudonymous: no names, no birth dates
    clinic_id   text NOT NULL REFERENCES sledfleet.clinics,
    first_seen  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_clinic_idx ON sledfleet.patients (clinic_id);

CREATE TABLE sledfleet.prescriptions (
    prescription_id       text PRIMARY KEY,
    patient_id            text NOT NULL,
    clinic_id             text NOT NULL,
    sessions_per_week     integer NOT NULL,
    sets                  integer NOT NULL,
    reps                  integer NOT NULL,
    load_kg               double precision NOT NULL,
    max_velocity_loss_pct double precision NOT NULL,
    start_date            date NOT NULL,
    end_date              date,
    seat_position         double precision,
    footplate_position    double precision,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prescriptions_patient_idx ON sledfleet.prescriptions (patient_id, start_date);

-- ---------------------------------------------------------------- training facts
CREATE TABLE sledfleet.sessions (
    ts                        timestamptz NOT NULL,   -- = start_ns
    session_id                text NOT NULL,
    clinic_id                 text NOT NULL,
    machine_id                text NOT NULL,
    patient_id                text,
    prescription_id           text,
    start_ns                  bigint NOT NULL,
    end_ns                    bigint NOT NULL,
    end_ts                    timestamptz NOT NULL,
    end_reason                text NOT NULL,
    sets                      integer NOT NULL,
    reps                      integer NOT NULL,
    partial_reps              integer NOT NULL,
    volume_load_kg            double precision NOT NULL,
    work_j                    double precision NOT NULL,
    mean_asi_pct              double precision,
    mean_mcv_ms               double precision,
    max_velocity_loss_pct     double precision,
    duration_s                double precision NOT NULL,
    density_j_per_min         double precision NOT NULL,
    max_load_kg               double precision NOT NULL,
    seat_position             double precision,
    footplate_position        double precision,
    completed_as_prescribed   boolean,
    lv_intercept_ms           double precision,
    lv_slope_ms_per_kg        double precision,
    e1rm_kg                   double precision,
    emitted_at_ns             bigint NOT NULL,
    stored_at                 timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, ts)
);
-- [timescale]
SELECT create_hypertable('sledfleet.sessions', by_range('ts', INTERVAL '30 days'));
-- [end]
CREATE INDEX sessions_patient_ts_idx ON sledfleet.sessions (patient_id, ts);
CREATE INDEX sessions_clinic_ts_idx ON sledfleet.sessions (clinic_id, ts);
CREATE INDEX sessions_machine_ts_idx ON sledfleet.sessions (machine_id, ts);

CREATE TABLE sledfleet.sets (
    ts                  timestamptz NOT NULL,   -- = start_ns
    machine_id          text NOT NULL,
    session_id          text NOT NULL,
    set_no              integer NOT NULL,
    clinic_id           text NOT NULL,
    patient_id          text,
    start_ns            bigint NOT NULL,
    end_ns              bigint NOT NULL,
    load_kg             double precision NOT NULL,
    reps                integer NOT NULL,
    partial_reps        integer NOT NULL,
    best_mcv_ms         double precision,
    last_mcv_ms         double precision,
    mean_mcv_ms         double precision,
    velocity_loss_pct   double precision,
    mean_power_w        double precision,
    peak_power_w        double precision,
    work_j              double precision NOT NULL,
    tut_s               double precision NOT NULL,
    mean_asi_pct        double precision,
    emitted_at_ns       bigint NOT NULL,
    stored_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (machine_id, session_id, set_no, ts)
);
-- [timescale]
SELECT create_hypertable('sledfleet.sets', by_range('ts', INTERVAL '30 days'));
-- [end]
CREATE INDEX sets_patient_ts_idx ON sledfleet.sets (patient_id, ts);
CREATE INDEX sets_session_idx ON sledfleet.sets (session_id);

CREATE TABLE sledfleet.reps (
    ts                timestamptz NOT NULL,   -- = start_ns
    machine_id        text NOT NULL,
    session_id        text NOT NULL,
    set_no            integer NOT NULL,
    rep_no            integer NOT NULL,
    clinic_id         text NOT NULL,
    patient_id        text,
    valid             boolean NOT NULL,
    start_ns          bigint NOT NULL,
    top_ns            bigint NOT NULL,
    end_ns            bigint NOT NULL,
    load_kg           double precision NOT NULL,
    rom_mm            double precision NOT NULL,
    concentric_s      double precision NOT NULL,
    eccentric_s       double precision NOT NULL,
    tut_s             double precision NOT NULL,
    mcv_ms            double precision NOT NULL,
    mpv_ms            double precision NOT NULL,
    pv_ms             double precision NOT NULL,
    time_to_pv_s      double precision NOT NULL,
    pv_position_pct   double precision NOT NULL,
    mean_force_n      double precision NOT NULL,
    peak_force_n      double precision NOT NULL,
    mean_power_w      double precision NOT NULL,
    peak_power_w      double precision NOT NULL,
    work_j            double precision NOT NULL,
    asi_pct           double precision,
    weaker_side       text,
    sign_changes      integer NOT NULL,
    jerk_score        double precision NOT NULL,
    dropout_samples   integer NOT NULL,
    replayed          boolean NOT NULL,
    emitted_at_ns     bigint NOT NULL,
    stored_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (machine_id, session_id, set_no, rep_no, ts)
)
-- [postgres]
PARTITION BY RANGE (ts)
-- [end]
;
-- [timescale]
SELECT create_hypertable('sledfleet.reps', by_range('ts', INTERVAL '30 days'));
-- [end]
CREATE INDEX reps_patient_ts_idx ON sledfleet.reps (patient_id, ts);
CREATE INDEX reps_machine_ts_idx ON sledfleet.reps (machine_id, ts);

CREATE TABLE sledfleet.frames (
    ts              timestamptz NOT NULL,   -- = t0_ns (device clock)
    machine_id      text NOT NULL,
    seq             bigint NOT NULL,
    clinic_id       text NOT NULL,
    session_id      text,
    t0_ns           bigint NOT NULL,
    rate_hz         double precision NOT NULL,
    load_kg         double precision NOT NULL,
    replayed        boolean NOT NULL,
    position_mm     real[] NOT NULL,
    force_left_n    real[] NOT NULL,
    force_right_n   real[] NOT NULL,
    UNIQUE (machine_id, seq, ts)
)
-- [postgres]
PARTITION BY RANGE (ts)
-- [end]
;
-- [timescale]
SELECT create_hypertable('sledfleet.frames', by_range('ts', INTERVAL '1 day'));
-- [end]

-- ---------------------------------------------------------------- machines over time
CREATE TABLE sledfleet.machine_status (
    ts                timestamptz NOT NULL,   -- = ts_ns
    machine_id        text NOT NULL,
    ts_ns             bigint NOT NULL,
    clinic_id         text NOT NULL,
    status            text NOT NULL,
    agent_version     text,
    firmware          text,
    rate_hz           double precision,
    config_version    bigint,
    clock_offset_ms   double precision,
    frames            bigint NOT NULL,
    frames_replayed   bigint NOT NULL,
    frames_duplicate  bigint NOT NULL,
    frames_missing    bigint NOT NULL,
    edge_dropped      bigint NOT NULL,
    last_seq          bigint,
    emitted_at_ns     bigint NOT NULL,
    UNIQUE (machine_id, ts_ns, ts)
)
-- [postgres]
PARTITION BY RANGE (ts)
-- [end]
;
-- [timescale]
SELECT create_hypertable('sledfleet.machine_status', by_range('ts', INTERVAL '7 days'));
-- [end]
CREATE INDEX machine_status_clinic_ts_idx ON sledfleet.machine_status (clinic_id, ts);

CREATE TABLE sledfleet.machine_events (
    ts          timestamptz NOT NULL,   -- = ts_ns (device clock)
    event_id    uuid NOT NULL,
    machine_id  text NOT NULL,
    clinic_id   text NOT NULL,
    ts_ns       bigint NOT NULL,
    type        text NOT NULL,
    seq         bigint NOT NULL,
    session_id  text,
    patient_id  text,
    code        text,
    detail      text,
    payload     jsonb NOT NULL,
    UNIQUE (event_id, ts)
);
-- [timescale]
SELECT create_hypertable('sledfleet.machine_events', by_range('ts', INTERVAL '30 days'));
-- [end]
CREATE INDEX machine_events_machine_ts_idx ON sledfleet.machine_events (machine_id, ts);
CREATE INDEX machine_events_clinic_ts_idx ON sledfleet.machine_events (clinic_id, ts);

-- ---------------------------------------------------------------- derived per patient
CREATE TABLE sledfleet.alerts (
    rule             text NOT NULL,
    subject_id       text NOT NULL,
    window_start_ns  bigint NOT NULL,
    window_start     timestamptz NOT NULL,
    ts               timestamptz NOT NULL,
    ts_ns            bigint NOT NULL,
    clinic_id        text NOT NULL,
    patient_id       text,
    machine_id       text,
    severity         text NOT NULL,
    value            double precision,
    threshold        double precision,
    message          text NOT NULL,
    emitted_at_ns    bigint NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, subject_id, window_start_ns)
);
CREATE INDEX alerts_clinic_ts_idx ON sledfleet.alerts (clinic_id, ts);
CREATE INDEX alerts_patient_ts_idx ON sledfleet.alerts (patient_id, ts);

CREATE TABLE sledfleet.adherence_weekly (
    patient_id            text NOT NULL,
    iso_week              text NOT NULL,
    week_start            date NOT NULL,
    clinic_id             text NOT NULL,
    prescription_id       text,
    prescribed            integer NOT NULL,
    attended              integer NOT NULL,
    completed             integer NOT NULL,
    adherence             double precision,
    compliance            double precision,
    relative_compliance   double precision,
    rolling4_prescribed   integer NOT NULL,
    rolling4_attended     integer NOT NULL,
    rolling4_completed    integer NOT NULL,
    rolling4_adherence    double precision,
    rolling4_compliance   double precision,
    emitted_at_ns         bigint NOT NULL,
    stored_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, iso_week)
);
CREATE INDEX adherence_clinic_week_idx ON sledfleet.adherence_weekly (clinic_id, week_start);

CREATE TABLE sledfleet.outcomes (
    patient_id   text NOT NULL,
    test         text NOT NULL CHECK (test IN ('t25fw', '5sts', '6mw', 'msws12')),
    measured_on  date NOT NULL,
    clinic_id    text NOT NULL,
    value        double precision NOT NULL,
    unit         text NOT NULL,
    note         text,
    entered_by   text NOT NULL DEFAULT current_user,
    entered_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, test, measured_on)
);
CREATE INDEX outcomes_clinic_idx ON sledfleet.outcomes (clinic_id, measured_on);

-- Summary of sledfleet.deadletter records (bridge, stream, sink): the payload stays in Kafka.
CREATE TABLE sledfleet.dead_letters (
    payload_sha256  text NOT NULL,
    origin          text NOT NULL,
    received_at     timestamptz NOT NULL,
    source          text NOT NULL,
    reason          text NOT NULL,
    detail          text NOT NULL,
    payload_size    integer NOT NULL,
    PRIMARY KEY (payload_sha256, origin, received_at)
);
CREATE INDEX dead_letters_received_idx ON sledfleet.dead_letters (received_at);

-- ---------------------------------------------------------------- plain-PostgreSQL partitions
-- Range partitions stand in for hypertable chunks: reps and machine status by year, raw
-- frames by day (dropped by retention). storage/writer.py calls ensure_partitions before
-- writing a batch that reaches a time range with no partition yet.
CREATE TABLE sledfleet.partitioning (
    table_name  text PRIMARY KEY,
    unit        text NOT NULL CHECK (unit IN ('day', 'month', 'year')),
    retention   interval            -- NULL = keep forever
);
INSERT INTO sledfleet.partitioning VALUES
    ('reps', 'year', NULL),
    ('machine_status', 'year', INTERVAL '400 days'),
    ('frames', 'day', INTERVAL '7 days');

-- [postgres]
CREATE FUNCTION sledfleet.ensure_partitions(p_table text, p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_unit text;
    v_lo timestamptz;
    v_hi timestamptz;
    v_name text;
    v_created integer := 0;
BEGIN
    SELECT unit INTO STRICT v_unit FROM sledfleet.partitioning WHERE table_name = p_table;
    v_lo := date_trunc(v_unit, p_from, 'UTC');
    WHILE v_lo <= p_to LOOP
        v_hi := (v_lo AT TIME ZONE 'UTC' + ('1 ' || v_unit)::interval) AT TIME ZONE 'UTC';
        v_name := p_table || '_p' || to_char(v_lo AT TIME ZONE 'UTC',
            CASE v_unit WHEN 'day' THEN 'YYYYMMDD' WHEN 'month' THEN 'YYYYMM' ELSE 'YYYY' END);
        IF to_regclass(format('sledfleet.%I', v_name)) IS NULL THEN
            -- serialise concurrent creators of the same partition
            PERFORM pg_advisory_xact_lock(hashtext('sledfleet.partition.' || v_name));
            IF to_regclass(format('sledfleet.%I', v_name)) IS NULL THEN
                EXECUTE format('CREATE TABLE sledfleet.%I PARTITION OF sledfleet.%I '
                               'FOR VALUES FROM (%L) TO (%L)', v_name, p_table, v_lo, v_hi);
                v_created := v_created + 1;
            END IF;
        END IF;
        v_lo := v_hi;
    END LOOP;
    RETURN v_created;
END $$;

-- Drop partitions wholly older than the table's retention; returns how many were dropped.
CREATE FUNCTION sledfleet.drop_expired_partitions() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_dropped integer := 0;
BEGIN
    FOR r IN
        SELECT c.relname, p.retention,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]
                   ::timestamptz AS upper_bound
        FROM sledfleet.partitioning p
        JOIN pg_inherits i ON i.inhparent = format('sledfleet.%I', p.table_name)::regclass
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE p.retention IS NOT NULL
    LOOP
        IF r.upper_bound <= now() - r.retention THEN
            EXECUTE format('DROP TABLE sledfleet.%I', r.relname);
            v_dropped := v_dropped + 1;
        END IF;
    END LOOP;
    RETURN v_dropped;
END $$;

-- History from 2015 (the contract's earliest valid time) to two years ahead.
SELECT sledfleet.ensure_partitions(t, '2015-01-01', now() + INTERVAL '2 years')
FROM (VALUES ('reps'), ('machine_status')) AS v(t);
SELECT sledfleet.ensure_partitions('frames', now() - INTERVAL '7 days', now() + INTERVAL '2 days');
-- [end]
