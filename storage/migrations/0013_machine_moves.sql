-- Issue #13: the sink never moves a machine between clinics (a row claiming another clinic
-- is dead-lettered, reason clinic_mismatch). A move is the explicit admin command
-- `sledfleet db move-machine <machine> <clinic> --reason ...`, which updates
-- sledfleet.machines and writes one row here in the same transaction. Rows written before
-- the move keep the clinic they were recorded under.

CREATE TABLE sledfleet.machine_moves (
    move_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine_id   text NOT NULL REFERENCES sledfleet.machines,
    from_clinic  text NOT NULL REFERENCES sledfleet.clinics,
    to_clinic    text NOT NULL REFERENCES sledfleet.clinics,
    moved_at     timestamptz NOT NULL DEFAULT now(),
    moved_by     text NOT NULL DEFAULT session_user,
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500)
);
CREATE INDEX machine_moves_machine_idx ON sledfleet.machine_moves (machine_id, moved_at);
