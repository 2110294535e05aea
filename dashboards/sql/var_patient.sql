-- format: table
-- columns: patient_id:text
SELECT patient_id
FROM v_patients
WHERE clinic_id IN ($clinic)
ORDER BY 1
