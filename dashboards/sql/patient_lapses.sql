-- format: table
-- columns: lapse_start:time, start_kind:text, lapse_end:time, end_kind:text, days:num
-- Gaps of more than LAPSE_DAYS without a session, only inside the patient's prescription
-- windows (v_patient_gaps), that overlap the period (which starts no earlier than care).
-- start_kind / end_kind: session, prescription start, prescription end, or now (ongoing).
SELECT g.gap_start AS lapse_start, g.start_kind, g.gap_end AS lapse_end, g.end_kind, g.days
FROM v_patient_gaps AS g
JOIN v_patient_care AS c ON c.patient_id = g.patient_id
WHERE g.patient_id = '$patient' AND g.days > {{LAPSE_DAYS}}
  AND g.gap_end > greatest($__timeFrom()::timestamptz, c.care_start)
  AND g.gap_start < $__timeTo()::timestamptz
ORDER BY 1
