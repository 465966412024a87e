// A Liftoff of a test's own, for the Node suites (browser tests, the TypeScript client's tests):
// `liftoff serve` with its embedded PostgreSQL in a temporary directory, on ports the kernel
// chooses. The binary is LIFTOFF_BINARY (CTest sets it), else the dev preset's build/dev/bin/liftoff.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const binary =
  process.env.LIFTOFF_BINARY ?? fileURLToPath(new URL('../../build/dev/bin/liftoff', import.meta.url));

export async function freePort() {
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// `liftoff serve` on a port the kernel chooses, read back from its log line "serving on http://...".
// The embedded PostgreSQL's port is probed free first; the probe can lose a race, so a start that
// fails is tried again on another port.
// Also returns command(args): `liftoff <args...>` on the same data (an operator's command, e.g.
// `operators grant`), resolving to its exit code and output.
export async function startLiftoff(env = {}) {
  for (let attempt = 1; ; ++attempt) {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'liftoff-node-'));
    const settings = {
      ...process.env,
      LIFTOFF_DATA_DIR: dataDir,
      LIFTOFF_EMBEDDED_PG_PORT: String(await freePort()),
      LIFTOFF_LISTEN: '127.0.0.1:0',
      LIFTOFF_THREADS: '2',
      LIFTOFF_PASSWORD_HASH_OPS: '1',
      LIFTOFF_PASSWORD_HASH_MEMORY: '64k',
      ...env,
    };
    const child = spawn(binary, ['serve'], { env: settings, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const base = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), 60_000);
      const read = (chunk) => {
        log += chunk;
        const serving = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
        if (serving) {
          clearTimeout(timer);
          resolve(serving[1]);
        }
      };
      child.stdout.on('data', read);
      child.stderr.on('data', read);
      child.on('exit', () => {
        clearTimeout(timer);
        resolve(null);
      });
    });
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.on('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    };
    const command = (args) =>
      new Promise((resolve) => {
        const run = spawn(binary, args, { env: settings, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        run.stdout.on('data', (chunk) => (output += chunk));
        run.stderr.on('data', (chunk) => (output += chunk));
        run.on('exit', (code) => resolve({ code, output }));
      });
    if (base) return { base, stop, command, log: () => log };
    await stop();
    if (attempt === 3) throw new Error(`liftoff did not start:\n${log}`);
  }
}
