// Generates JSON Schemas from @grafana/schema's TypeScript types (Grafana 11.6, pinned in
// package-lock.json) for the dashboard model and the panel plugins SledFleet uses.
// Output: ../schema/*.schema.json (committed; the Python tests need no npm).
// Run: npm ci && npm run generate
import { createGenerator } from "ts-json-schema-generator";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const raw = join(here, "node_modules/@grafana/schema/dist/esm/raw");
const out = join(here, "..", "schema");
const version = JSON.parse(
  readFileSync(join(here, "node_modules/@grafana/schema/package.json"), "utf8"),
).version;

const targets = [
  ["dashboard", "dashboard/x/dashboard_types.gen.d.ts", "Dashboard"],
  ["panel-timeseries", "composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen.d.ts", "Options"],
  ["fieldconfig-timeseries", "composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen.d.ts", "FieldConfig"],
  ["panel-stat", "composable/stat/panelcfg/x/StatPanelCfg_types.gen.d.ts", "Options"],
  ["panel-table", "composable/table/panelcfg/x/TablePanelCfg_types.gen.d.ts", "Options"],
  ["fieldconfig-table", "composable/table/panelcfg/x/TablePanelCfg_types.gen.d.ts", "FieldConfig"],
  ["panel-barchart", "composable/barchart/panelcfg/x/BarChartPanelCfg_types.gen.d.ts", "Options"],
  ["fieldconfig-barchart", "composable/barchart/panelcfg/x/BarChartPanelCfg_types.gen.d.ts", "FieldConfig"],
  ["panel-bargauge", "composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen.d.ts", "Options"],
  ["panel-piechart", "composable/piechart/panelcfg/x/PieChartPanelCfg_types.gen.d.ts", "Options"],
  ["panel-statetimeline", "composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen.d.ts", "Options"],
  ["panel-text", "composable/text/panelcfg/x/TextPanelCfg_types.gen.d.ts", "Options"],
];

mkdirSync(out, { recursive: true });
for (const [name, file, type] of targets) {
  const schema = createGenerator({
    path: join(raw, file),
    type,
    skipTypeCheck: true,
    additionalProperties: false,
    expose: "all",
    topRef: true,
  }).createSchema(type);
  schema.$comment = `Generated from @grafana/schema ${version} (${file}#${type}) by dashboards/schema-gen; do not edit.`;
  writeFileSync(join(out, `${name}.schema.json`), JSON.stringify(schema, null, 2) + "\n");
  console.log(`wrote ${name}.schema.json`);
}
