-- Per clinic and ISO week adherence summary kept up to date by the writer (same
-- transaction as the adherence upsert), so the fleet-wide distribution reads ~50 rows per
-- clinic and year instead of aggregating every patient-week. v_clinic_adherence keeps its
-- columns. adherence_weekly is a plain table on both flavours, so is this.

CREATE TABLE sledfleet.clinic_adherence_weekly (
    clinic_id                text NOT NULL,
    week_start               date NOT NULL,
    iso_week                 text NOT NULL,
    patients                 bigint NOT NULL,
    mean_adherence           double precision,
    mean_compliance          double precision,
    mean_rolling4_adherence  double precision,
    patients_below_50        bigint NOT NULL,
    patients_50_to_75        bigint NOT NULL,
    patients_75_to_100       bigint NOT NULL,
    patients_at_100          bigint NOT NULL,
    PRIMARY KEY (clinic_id, week_start)
);

-- Recompute the given (clinic, week) pairs from adherence_weekly. Concurrent writers of the
-- same pair serialise on an advisory lock taken BEFORE the recompute reads, so the later
-- one sees the earlier one's committed rows (READ COMMITTED: a new snapshot per statement).
-- Bands: < 0.5, 0.5-0.75 (0.75 = the lapse threshold in docs/domain), 0.75-1, >= 1.
CREATE FUNCTION sledfleet.refresh_clinic_adherence(p_clinics text[], p_weeks date[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('sledfleet.clinic_adherence'), hashtext(c || w::text))
    FROM unnest(p_clinics, p_weeks) AS u(c, w) ORDER BY c, w;
    DELETE FROM sledfleet.clinic_adherence_weekly s
    USING unnest(p_clinics, p_weeks) AS u(c, w)
    WHERE s.clinic_id = u.c AND s.week_start = u.w;
    INSERT INTO sledfleet.clinic_adherence_weekly
    SELECT a.clinic_id, a.week_start, min(a.iso_week), count(*), avg(a.adherence),
           avg(a.compliance), avg(a.rolling4_adherence),
           count(*) FILTER (WHERE a.adherence < 0.5),
           count(*) FILTER (WHERE a.adherence >= 0.5 AND a.adherence < 0.75),
           count(*) FILTER (WHERE a.adherence >= 0.75 AND a.adherence < 1),
           count(*) FILTER (WHERE a.adherence >= 1)
    FROM sledfleet.adherence_weekly a
    JOIN (SELECT DISTINCT c, w FROM unnest(p_clinics, p_weeks) AS u(c, w)) u
      ON a.clinic_id = u.c AND a.week_start = u.w
    GROUP BY a.clinic_id, a.week_start;
END $$;

SELECT sledfleet.refresh_clinic_adherence(array_agg(clinic_id), array_agg(week_start))
FROM (SELECT DISTINCT clinic_id, week_start FROM sledfleet.adherence_weekly) p;

CREATE OR REPLACE VIEW sledfleet.v_clinic_adherence AS
SELECT week_start, iso_week, clinic_id, patients, mean_adherence, mean_compliance,
       mean_rolling4_adherence, patients_below_50, patients_50_to_75, patients_75_to_100,
       patients_at_100
FROM sledfleet.clinic_adherence_weekly;
