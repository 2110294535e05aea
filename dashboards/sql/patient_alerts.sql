-- format: table
-- columns: time:time, rule:text, severity:text, value:num, threshold:num, message:text
SELECT ts AS "time", rule, severity, value, threshold, message
FROM v_alerts
WHERE patient_id = '$patient' AND $__timeFilter(ts)
ORDER BY ts DESC
