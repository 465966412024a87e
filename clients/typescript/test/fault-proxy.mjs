// A proxy in front of a real Liftoff that fails on purpose, to see what the client does when the
// network or the server does: it forwards each request unless the test's `decide` says otherwise.
//   decide(request) -> undefined           forward, answer as Liftoff did
//                    | { status, headers, forward }  answer `status` instead (after forwarding the
//                                                   request and dropping Liftoff's answer, when
//                                                   `forward`: a write done whose answer was lost)
//                    | { cutAfter: n }      forward, and cut the connection after n bytes of the
//                                           answer (a stream dropped mid-way)
// Every request is kept in `requests` ({method, url, headers, at}).
import http from 'node:http';

export async function startFaultProxy(upstream) {
  const target = new URL(upstream);
  const proxy = {
    requests: [],
    decide: () => undefined,
    origin: '',
    close: () => new Promise((resolve) => server.close(resolve)),
  };
  const forward = (req, body, onResponse) => {
    const out = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      onResponse,
    );
    out.on('error', () => onResponse(null));
    out.end(body);
    return out;
  };
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    proxy.requests.push({ method: req.method, url: req.url, headers: req.headers, at: Date.now() });
    const decision = proxy.decide(req) ?? {};
    if (decision.status !== undefined) {
      const answer = () => {
        res.writeHead(decision.status, { 'Content-Type': 'application/problem+json', ...decision.headers });
        res.end(JSON.stringify({ type: 'urn:liftoff:problem:unavailable', title: 'Service unavailable', status: decision.status, detail: 'injected by the test proxy' }));
      };
      if (!decision.forward) return answer();
      forward(req, body, (upstreamRes) => {
        upstreamRes?.resume();
        upstreamRes?.on('end', answer);
        if (!upstreamRes) answer();
      });
      return;
    }
    const out = forward(req, body, (upstreamRes) => {
      if (!upstreamRes) {
        res.destroy();
        return;
      }
      res.writeHead(upstreamRes.statusCode, upstreamRes.headers);
      let sent = 0;
      upstreamRes.on('data', (chunk) => {
        if (decision.cutAfter !== undefined && sent + chunk.length >= decision.cutAfter) {
          res.write(chunk.subarray(0, decision.cutAfter - sent));
          res.destroy();
          out.destroy();
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      });
      upstreamRes.on('end', () => res.end());
    });
    res.on('close', () => out.destroy());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.origin = `http://127.0.0.1:${server.address().port}`;
  return proxy;
}
