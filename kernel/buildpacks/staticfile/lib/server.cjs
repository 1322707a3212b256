// The staticfile buildpack's file server, copied into each droplet. Serves one directory of
// the app on $PORT: GET and HEAD, index.html for directories, never a dotfile (.profile.d,
// .ingot) nor the Staticfile/Procfile, and nothing a link leads to outside the served root.
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const appDir = fs.realpathSync(path.resolve(__dirname, '../..'));
const config = JSON.parse(fs.readFileSync(path.join(__dirname, 'config.json'), 'utf8'));
const root = fs.realpathSync(path.resolve(appDir, config.root || '.'));
const port = Number(process.env.PORT || 8080);
const HIDDEN = new Set(['Staticfile', 'Procfile', 'manifest.yml']);

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8', '.md': 'text/markdown; charset=utf-8', '.xml': 'application/xml',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif',
  '.webp': 'image/webp', '.ico': 'image/x-icon', '.woff': 'font/woff', '.woff2': 'font/woff2', '.wasm': 'application/wasm',
  '.pdf': 'application/pdf', '.map': 'application/json',
};

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** The file a URL path names inside root, or null. */
function resolve(urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const parts = decoded.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..' || p.startsWith('.'))) return null;
  if (parts.length === 1 && HIDDEN.has(parts[0]) && root === appDir) return null;
  return path.join(root, ...parts);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
  const url = new URL(req.url || '/', 'http://localhost');
  let file = resolve(url.pathname);
  if (!file) return send(res, 404, 'not found\n');
  fs.realpath(file, (err, real) => {
    if (err || (real !== root && !real.startsWith(root + path.sep))) return send(res, 404, 'not found\n');
    fs.stat(real, (err2, st) => {
      if (err2) return send(res, 404, 'not found\n');
      if (st.isDirectory()) {
        if (!url.pathname.endsWith('/')) return send(res, 301, 'moved\n', { location: `${url.pathname}/${url.search}` });
        file = path.join(real, 'index.html');
        return fs.stat(file, (err3, ist) => (err3 || !ist.isFile() ? send(res, 404, 'not found\n') : stream(req, res, file, ist)));
      }
      if (!st.isFile()) return send(res, 404, 'not found\n');
      stream(req, res, real, st);
    });
  });
});

function stream(req, res, file, st) {
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const headers = {
    'content-type': TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream',
    'content-length': st.size,
    'last-modified': st.mtime.toUTCString(),
    etag,
  };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, { etag });
    return res.end();
  }
  res.writeHead(200, headers);
  if (req.method === 'HEAD') return res.end();
  fs.createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}

server.listen(port, () => process.stdout.write(`serving ${root} on port ${port}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
