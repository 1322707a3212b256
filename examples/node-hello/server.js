// Ingot's Node.js example. `/` says hello; `/env` shows what cfenv makes of the environment
// the DEA gives the instance (name, port, URLs, bound services).
const http = require('node:http');
const cfenv = require('cfenv');

const appEnv = cfenv.getAppEnv();

const server = http.createServer((req, res) => {
  if (req.url === '/env') {
    const body = JSON.stringify({
      name: appEnv.name,
      port: appEnv.port,
      urls: appEnv.urls,
      isLocal: appEnv.isLocal,
      services: appEnv.getServices(),
      memoryLimit: process.env.MEMORY_LIMIT || null,
      nodeOptions: process.env.NODE_OPTIONS || null,
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(body);
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`Hello from ${appEnv.name} on node ${process.version}\n`);
});

server.listen(appEnv.port, appEnv.bind, () => console.log(`node-hello listening on ${appEnv.bind}:${appEnv.port}`));
