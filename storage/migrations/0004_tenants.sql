-- Tenant isolation without row-level security (TimescaleDB refuses RLS on compressed
-- hypertables and continuous aggregates): each clinic's database role reads only the
-- security_barrier views of schema "clinic", which keep the rows of the clinics mapped to
-- current_user in sledfleet.clinic_roles. Clinic roles get no privilege on schema sledfleet.
-- The operations role reads schema "ops": fleet-wide views without any patient id.
-- Roles, grants and search_path are managed by storage/tenants.py (`sledfleet db add-clinic`).

CREATE TABLE sledfleet.clinic_roles (
    role_name  text PRIMARY KEY,
    clinic_id  text NOT NULL REFERENCES sledfleet.clinics,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clinic_roles_clinic_idx ON sledfleet.clinic_roles (clinic_id);

CREATE SCHEMA clinic;
CREATE SCHEMA ops;

CREATE VIEW clinic.v_patient_daily WITH (security_barrier) AS
SELECT * FROM sledfleet.v_patient_daily
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_patient_weekly WITH (security_barrier) AS
SELECT * FROM sledfleet.v_patient_weekly
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_clinic_daily WITH (security_barrier) AS
SELECT * FROM sledfleet.v_clinic_daily
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_machine_hourly WITH (security_barrier) AS
SELECT * FROM sledfleet.v_machine_hourly
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_machine_status_hourly WITH (security_barrier) AS
SELECT * FROM sledfleet.v_machine_status_hourly
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_clinics WITH (security_barrier) AS
SELECT * FROM sledfleet.v_clinics
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_fleet_machines WITH (security_barrier) AS
SELECT * FROM sledfleet.v_fleet_machines
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_machine_events WITH (security_barrier) AS
SELECT * FROM sledfleet.v_machine_events
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_prescriptions WITH (security_barrier) AS
SELECT * FROM sledfleet.v_prescriptions
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_patients WITH (security_barrier) AS
SELECT * FROM sledfleet.v_patients
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_sessions WITH (security_barrier) AS
SELECT * FROM sledfleet.v_sessions
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_sets WITH (security_barrier) AS
SELECT * FROM sledfleet.v_sets
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_patient_load_weekly WITH (security_barrier) AS
SELECT * FROM sledfleet.v_patient_load_weekly
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_patient_adherence WITH (security_barrier) AS
SELECT * FROM sledfleet.v_patient_adherence
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_clinic_adherence WITH (security_barrier) AS
SELECT * FROM sledfleet.v_clinic_adherence
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_alerts WITH (security_barrier) AS
SELECT * FROM sledfleet.v_alerts
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_alerts_open WITH (security_barrier) AS
SELECT * FROM sledfleet.v_alerts_open
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_alerts_daily WITH (security_barrier) AS
SELECT * FROM sledfleet.v_alerts_daily
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_data_quality WITH (security_barrier) AS
SELECT * FROM sledfleet.v_data_quality
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_outcomes WITH (security_barrier) AS
SELECT * FROM sledfleet.v_outcomes
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);

-- Operations: fleet-wide, aggregate or machine-level views only (no patient_id column).
CREATE VIEW ops.v_clinics AS SELECT * FROM sledfleet.v_clinics;
CREATE VIEW ops.v_clinic_daily AS SELECT * FROM sledfleet.v_clinic_daily;
CREATE VIEW ops.v_machine_hourly AS SELECT * FROM sledfleet.v_machine_hourly;
CREATE VIEW ops.v_machine_status_hourly AS SELECT * FROM sledfleet.v_machine_status_hourly;
CREATE VIEW ops.v_fleet_machines AS SELECT * FROM sledfleet.v_fleet_machines;
CREATE VIEW ops.v_machine_events AS SELECT * FROM sledfleet.v_machine_events;
CREATE VIEW ops.v_clinic_adherence AS SELECT * FROM sledfleet.v_clinic_adherence;
CREATE VIEW ops.v_alerts_daily AS SELECT * FROM sledfleet.v_alerts_daily;
CREATE VIEW ops.v_data_quality AS SELECT * FROM sledfleet.v_data_quality;
CREATE VIEW ops.v_dead_letters_daily AS SELECT * FROM sledfleet.v_dead_letters_daily;
