-- format: table
-- columns: time:time, patient_id:text, rule:text, severity:text, value:num, threshold:num, message:text
SELECT ts AS "time", patient_id, rule, severity, value, threshold, message
FROM v_alerts
WHERE clinic_id IN ($clinic) AND patient_id IN ($patient)
  AND rule IN ('lapse', 'dropout_risk', 'low_adherence', 'asymmetry', 'unusual_fatigue',
               'performance_drop')
  AND $__timeFilter(ts)
ORDER BY ts DESC
