// A chordial-server on 127.0.0.1 inside the test's namespace: started with a fresh data dir and an admin
// listener on the same host (the full /v1/status and /metrics live only there), ready when it prints its
// "listening http://ADDR node ID wallet W admin http://ADMIN" line.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { withDeadline } from './browser.mjs';

const ROOT = path.resolve(import.meta.dirname, '../../..');

/** The server binary: $CHORDIAL_SERVER_BIN, else target/release or target/debug. Null if none is built. */
export function serverBinary() {
  const candidates = [
    process.env.CHORDIAL_SERVER_BIN,
    path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'release/chordial-server'),
    path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'debug/chordial-server'),
  ].filter(Boolean);
  return candidates.find((c) => existsSync(c)) ?? null;
}

export async function startServer({ network = 'chordial-dev', listen = '127.0.0.1:0', dataDir } = {}) {
  const bin = serverBinary();
  if (!bin) throw new Error('no chordial-server binary (cargo build --release -p chordial-server)');
  const dir = dataDir ?? mkdtempSync(path.join(tmpdir(), 'chordial-server-'));
  const admin = `${listen.slice(0, listen.lastIndexOf(':'))}:0`;
  const args = ['--listen', listen, '--admin-listen', admin, '--data-dir', dir, '--network', network];
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
  });
  const logs = [];
  child.stderr.on('data', (d) => logs.push(String(d)));
  const ready = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening (http:\/\/\S+) node (\S+) wallet (\S+) admin (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1], nodeId: m[2], wallet: m[3], adminUrl: m[4] });
    });
    child.on('exit', (code) => reject(new Error(`chordial-server exited (${code}): ${logs.join('').slice(-2000)}`)));
  });
  const info = await withDeadline(ready, 30_000, 'chordial-server did not start');
  return {
    ...info,
    logs,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await withDeadline(exited, 15_000, 'chordial-server did not stop').catch(() => child.kill('SIGKILL'));
    },
  };
}
