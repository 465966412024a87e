// Serves the example page and the client's bundle, and passes /v1 on to a Liftoff (as a front
// end's dev server does), so the page and the API share one origin.
//   node example/serve.mjs [--api http://127.0.0.1:8080] [--port 8081]
// Prints "example on http://127.0.0.1:PORT" once it listens (PORT 0: one the kernel chooses).
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';

const files = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/app.css': ['app.css', 'text/css; charset=utf-8'],
  '/liftoff.min.js': ['../dist/liftoff.min.js', 'text/javascript; charset=utf-8'],
};

export async function startExample({ api = 'http://127.0.0.1:8080', port = 8081 } = {}) {
  const upstream = new URL(api);
  const server = http.createServer(async (req, res) => {
    const path = req.url.split('?')[0];
    if (path.startsWith('/v1/')) {
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode, answer.headers);
          answer.pipe(res);
        },
      );
      out.on('error', () => {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`no Liftoff at ${api}\n`);
      });
      res.on('close', () => out.destroy());
      req.pipe(out);
      return;
    }
    const file = files[path];
    if (!file || req.method !== 'GET') {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    try {
      const body = await readFile(new URL(file[0], import.meta.url));
      res.writeHead(200, { 'Content-Type': file[1], 'Cache-Control': 'no-cache' });
      res.end(body);
    } catch {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`${file[0]} is missing: run npm run build in clients/typescript\n`);
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name, fallback) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? process.argv[at + 1] : fallback;
  };
  const { url } = await startExample({ api: arg('--api', 'http://127.0.0.1:8080'), port: Number(arg('--port', '8081')) });
  console.log(`example on ${url} (the API: ${arg('--api', 'http://127.0.0.1:8080')}; ${fileURLToPath(import.meta.url)})`);
}
