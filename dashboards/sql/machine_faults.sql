-- format: table
-- columns: time:time, machine_id:text, code:text, detail:text
-- Fault events the machines reported.
SELECT ts AS "time", machine_id, code, detail
FROM v_machine_events
WHERE clinic_id IN ($clinic) AND machine_id IN ($machine) AND type = 'fault'
  AND $__timeFilter(ts)
ORDER BY 1 DESC
