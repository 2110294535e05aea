# shellcheck shell=bash
# TimescaleDB-on-WASM (pglite + pglite-socket under Node.js): see services/pglite/.

pglite_health() { port_open "$PGLITE_PORT"; }
pglite_status() { printf 'not set up yet'; return 1; }
pglite_start() { fail pglite "services/pglite is not set up yet" ""; }
pglite_stop() { say "pglite not running"; }
