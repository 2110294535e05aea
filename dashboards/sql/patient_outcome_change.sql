-- format: table
-- columns: test:text, first_on:date, first_value:num, latest_on:date, latest_value:num, change:text, meaningful_change:text, verdict:text
-- Per outcome test: the first and the latest result up to the range end, the change, the
-- meaningful-change threshold (dashboards/thresholds.py OUTCOME_*) and what the change means.
-- T25FW, 5STS and MSWS-12: lower is better; 6MW: higher is better.
SELECT CASE test WHEN 't25fw' THEN 'T25FW (s)' WHEN '5sts' THEN '5STS (s)'
                 WHEN '6mw' THEN '6MW (m)' ELSE 'MSWS-12' END AS test,
       first_on, first_value, latest_on, latest_value,
       CASE WHEN latest_on = first_on THEN 'one result only'
            ELSE format('%s (%s %%)', to_char(delta, 'FMS9990.0'), to_char(delta_pct, 'FMS990'))
       END AS change,
       CASE test
           WHEN 't25fw' THEN format('%s %%', {{OUTCOME_T25FW_CHANGE_PCT}})
           WHEN '5sts' THEN format('%s s', {{OUTCOME_5STS_CHANGE_S}})
           WHEN '6mw' THEN format('%s %%', {{OUTCOME_6MW_CHANGE_PCT}})
           ELSE format('%s points', {{OUTCOME_MSWS12_CHANGE_POINTS}})
       END AS meaningful_change,
       CASE WHEN latest_on = first_on THEN 'needs a second result'
            WHEN NOT meaningful THEN 'within the meaningful-change threshold'
            WHEN better THEN 'meaningful improvement'
            ELSE 'meaningful worsening: review' END AS verdict
FROM (
    SELECT test, first_on, first_value, measured_on AS latest_on, value AS latest_value,
           value - first_value AS delta,
           (value - first_value) / nullif(first_value, 0) * 100 AS delta_pct,
           CASE test
               WHEN 't25fw' THEN abs(value - first_value) / nullif(first_value, 0) * 100
                    >= {{OUTCOME_T25FW_CHANGE_PCT}}
               WHEN '5sts' THEN abs(value - first_value) >= {{OUTCOME_5STS_CHANGE_S}}
               WHEN '6mw' THEN abs(value - first_value) / nullif(first_value, 0) * 100
                    >= {{OUTCOME_6MW_CHANGE_PCT}}
               ELSE abs(value - first_value) >= {{OUTCOME_MSWS12_CHANGE_POINTS}}
           END AS meaningful,
           CASE WHEN test = '6mw' THEN value > first_value ELSE value < first_value END AS better
    FROM (
    SELECT test, measured_on, value,
           first_value(measured_on) OVER w AS first_on, first_value(value) OVER w AS first_value,
           row_number() OVER (PARTITION BY test ORDER BY measured_on DESC) AS latest
    FROM v_outcomes
    WHERE patient_id = '$patient' AND measured_on <= $__timeTo()::date
    WINDOW w AS (PARTITION BY test ORDER BY measured_on)
    ) AS r
    WHERE latest = 1
) AS c
ORDER BY 1
