-- format: table
-- columns: time:time, phase:text, rpe:num, fatigue:num, symptoms:text, relapse:text
-- Effort, fatigue and symptom notes (patient_note events, `sledfleet note add`).
SELECT noted_at AS "time", replace(coalesce(phase, ''), '_', ' ') AS phase, rpe, fatigue,
       coalesce(symptoms, '') AS symptoms,
       CASE WHEN relapse_suspected THEN 'suspected: review' ELSE '' END AS relapse
FROM v_patient_notes
WHERE patient_id = '$patient' AND $__timeFilter(noted_at)
ORDER BY noted_at DESC
