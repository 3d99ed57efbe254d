// A receiver for eventfleet's signed webhooks (Standard Webhooks), in
// TypeScript on Node with node:crypto and the pg client, no framework:
// verify the signature over the raw body, then handle each event once,
// deduplicating on webhook-id in the same PostgreSQL transaction as the
// handling itself.
//
//   npm install pg && npm install -D typescript @types/node @types/pg
//   npx tsc   # tsconfig.json beside this file
//   WEBHOOK_SECRET=whsec_… DATABASE_URL=postgres://… PORT=8081 node receiver.js
//
// Answers: 204 handled (or already handled), 401 not signed with our
// secret or too old (eventfleet dead-letters at once; replay them once the
// secrets agree), 400 not JSON (dead-lettered), 500 handling failed
// (retried).
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { pathToFileURL } from "node:url";
import pg from "pg";

/** How far webhook-timestamp may be from our clock, either way. */
export const TOLERANCE_SECONDS = 5 * 60;

export class VerifyError extends Error {}

/** The keys of WEBHOOK_SECRET's value: "whsec_<base64>", space-separated during a rotation. */
export function parseSecrets(value: string): Buffer[] {
  return value.split(/\s+/).filter(Boolean).map((s) => {
    if (!s.startsWith("whsec_")) throw new Error("WEBHOOK_SECRET: each secret starts with whsec_");
    const b64 = s.slice("whsec_".length);
    const key = Buffer.from(b64, "base64"); // never fails: check it round-trips
    if (key.toString("base64") !== b64 || key.length < 24 || key.length > 64)
      throw new Error("WEBHOOK_SECRET: each secret is whsec_ and the base64 of 24 to 64 bytes");
    return key;
  });
}

/**
 * Checks a request and returns its webhook-id, or throws a VerifyError.
 * body is the raw bytes received: never JSON.parse and re-serialize first.
 */
export function verify(keys: Buffer[], headers: IncomingHttpHeaders, body: Buffer,
  now: number = Math.floor(Date.now() / 1000)): string {
  const id = headers["webhook-id"], ts = headers["webhook-timestamp"], sigs = headers["webhook-signature"];
  if (typeof id !== "string" || typeof ts !== "string" || typeof sigs !== "string" || !id || !ts || !sigs) {
    throw new VerifyError("not signed: webhook-id, webhook-timestamp or webhook-signature missing");
  }
  if (!/^[0-9]+$/.test(ts)) throw new VerifyError("webhook-timestamp is not unix seconds");
  const signed = Buffer.concat([Buffer.from(`${id}.${ts}.`), body]);
  const expected = keys.map((k) => createHmac("sha256", k).update(signed).digest());
  let ok = false;
  for (const sig of sigs.split(" ")) {
    const comma = sig.indexOf(",");
    if (comma < 0 || sig.slice(0, comma) !== "v1") continue; // v1a, later versions
    const got = Buffer.from(sig.slice(comma + 1), "base64");
    for (const e of expected) {
      if (got.length === e.length && timingSafeEqual(got, e)) ok = true;
    }
  }
  if (!ok) throw new VerifyError("no signature matches");
  if (Math.abs(now - Number(ts)) > TOLERANCE_SECONDS) throw new VerifyError("webhook-timestamp out of tolerance");
  return id;
}

/** The deduplication table: one row per webhook-id handled. */
export const SCHEMA = `CREATE TABLE IF NOT EXISTS webhook_deliveries (
  webhook_id  text PRIMARY KEY,
  received_at timestamptz NOT NULL DEFAULT now()
)`;

export type Handle = (client: pg.PoolClient, event: unknown, headers: IncomingHttpHeaders) => Promise<void>;

/**
 * Runs handle once per webhook-id: the id is recorded in the same
 * transaction as the handling, so an error or a crash undoes both, and a
 * concurrent duplicate waits on the row lock, then does nothing. Returns
 * false for a duplicate.
 */
export async function handleOnce(pool: pg.Pool, webhookId: string, event: unknown,
  headers: IncomingHttpHeaders, handle: Handle): Promise<boolean> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const { rowCount } = await client.query(
      "INSERT INTO webhook_deliveries (webhook_id) VALUES ($1) ON CONFLICT DO NOTHING", [webhookId]);
    if (rowCount === 1) await handle(client, event, headers);
    await client.query("COMMIT");
    return rowCount === 1;
  } catch (err) {
    await client.query("ROLLBACK");
    throw err;
  } finally {
    client.release();
  }
}

/** An HTTP server that verifies, then calls handleOnce. */
export function createReceiver(opts: { keys: Buffer[]; pool: pg.Pool; handle: Handle }): Server {
  return createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    let id: string;
    try {
      id = verify(opts.keys, req.headers, body);
    } catch (err) {
      res.writeHead(401).end(err instanceof VerifyError ? err.message : "cannot verify");
      return;
    }
    let event: unknown;
    try {
      event = JSON.parse(body.toString("utf8"));
    } catch {
      res.writeHead(400).end("body is not JSON");
      return;
    }
    try {
      const first = await handleOnce(opts.pool, id, event, req.headers, opts.handle);
      res.writeHead(204, { "x-duplicate": String(!first) }).end();
    } catch (err) {
      console.error("webhook handling failed:", err);
      res.writeHead(500).end("handling failed");
    }
  });
}

// Run as a program: an example that keeps every event in received_events.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const keys = parseSecrets(process.env.WEBHOOK_SECRET ?? "");
  if (keys.length === 0) throw new Error("set WEBHOOK_SECRET to the worker's secret(s)");
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
  await pool.query(SCHEMA);
  await pool.query(`CREATE TABLE IF NOT EXISTS received_events (
    webhook_id text PRIMARY KEY, event_type text, data jsonb NOT NULL)`);
  const server = createReceiver({
    keys,
    pool,
    handle: async (client, event, headers) => {
      await client.query("INSERT INTO received_events (webhook_id, event_type, data) VALUES ($1, $2, $3)",
        [headers["webhook-id"], headers["x-event-type"], JSON.stringify(event)]);
    },
  });
  server.listen(Number(process.env.PORT ?? 8081), process.env.HOST, () => {
    const addr = server.address();
    console.log(`listening on ${typeof addr === "object" && addr ? addr.port : addr}`);
  });
  process.on("SIGTERM", () => server.close(() => void pool.end()));
}
