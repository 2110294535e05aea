-- format: table
-- columns: time:time, rule:text, severity:text, reading:text, state:text
-- The alert's value in words with its unit and window, so it reads the same as the summary
-- (low_adherence is the rolling 4-week adherence of v_patient_adherence).
SELECT ts AS "time", replace(rule, '_', ' ') AS rule, severity,
       CASE rule
           WHEN 'low_adherence' THEN format('rolling 4-week adherence %s %% (below %s %%)',
                round((value * 100)::numeric), round((threshold * 100)::numeric))
           WHEN 'lapse' THEN format('%s days without a session', round(value::numeric))
           WHEN 'dropout_risk' THEN format('%s days without a session', round(value::numeric))
           WHEN 'asymmetry' THEN format('asymmetry %s %% (band ±%s %%)',
                round(value::numeric, 1), round(threshold::numeric))
           WHEN 'unusual_fatigue' THEN format('%s (threshold %s)',
                round(value::numeric, 1), round(threshold::numeric, 1))
           WHEN 'performance_drop' THEN format('drop persisting %s h', round(value::numeric))
           ELSE message
       END AS reading,
       CASE WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
            WHEN is_open THEN 'open' ELSE 'closed (over 14 days old)' END AS state
FROM v_alerts
WHERE patient_id = '$patient' AND $__timeFilter(ts)
ORDER BY ts DESC
