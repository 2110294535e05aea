-- format: table
-- columns: time:time, machine_id:text, rule:text, severity:text, value:num, message:text, is_open:bool
-- Machine alerts the stream raised (offline, sensor fault, frame gaps, clock skew).
SELECT ts AS "time", machine_id, rule, severity, value, message, is_open
FROM v_alerts
WHERE clinic_id IN ($clinic) AND machine_id IN ($machine)
  AND rule IN ('machine_offline', 'sensor_fault', 'frame_gap', 'clock_skew')
  AND $__timeFilter(ts)
ORDER BY 1 DESC
