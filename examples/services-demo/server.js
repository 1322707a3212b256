// Ingot's services example. It finds its bound services with cfenv (VCAP_SERVICES) by label
// and talks to each directly with that service's usual npm client and the binding's own
// credentials:
//   GET  /                  the bound services: [{name, label}]
//   PUT  /<label>/<key>     stores the request body under key (redis, postgresql, mysql);
//                           for rabbitmq, publishes the body to the queue <key> (confirmed)
//   GET  /<label>/<key>     the value (404 if none); for rabbitmq, consumes one message
// A service that is not bound answers 404; one that refuses answers 502 with its message.
// Each request opens its own connection and closes it: a small app, and no stale connection
// after its credentials change or its server restarts.
const http = require('node:http');
const cfenv = require('cfenv');

const appEnv = cfenv.getAppEnv();
const services = Object.values(appEnv.getServices());

/** The credentials of the first bound service with this label. */
function credentialsOf(label) {
  const s = services.find((x) => x.label === label);
  return s && s.credentials;
}

const stores = {
  async redis(c, op, key, value) {
    const { createClient } = require('redis');
    const client = createClient({ url: c.uri, socket: { connectTimeout: 5000, reconnectStrategy: false } });
    client.on('error', () => {}); // the command's own rejection reports it
    await client.connect();
    try {
      if (op === 'put') return await client.set(key, value);
      return await client.get(key);
    } finally {
      client.destroy();
    }
  },

  async postgresql(c, op, key, value) {
    const { Client } = require('pg');
    const client = new Client({ connectionString: c.uri, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      await client.query('CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v text NOT NULL)');
      if (op === 'put') return (await client.query('INSERT INTO kv VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v', [key, value])).command;
      const r = await client.query('SELECT v FROM kv WHERE k = $1', [key]);
      return r.rows.length ? r.rows[0].v : null;
    } finally {
      await client.end().catch(() => {});
    }
  },

  async mysql(c, op, key, value) {
    const mysql = require('mysql2/promise');
    const conn = await mysql.createConnection({ uri: c.uri, connectTimeout: 5000 });
    try {
      await conn.query('CREATE TABLE IF NOT EXISTS kv (k varchar(191) PRIMARY KEY, v longtext NOT NULL)');
      if (op === 'put') return (await conn.execute('INSERT INTO kv VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)', [key, value]), 'OK');
      const [rows] = await conn.execute('SELECT v FROM kv WHERE k = ?', [key]);
      return rows.length ? rows[0].v : null;
    } finally {
      conn.destroy();
    }
  },

  async rabbitmq(c, op, queue, value) {
    const amqp = require('amqplib');
    const conn = await amqp.connect(c.uri, { timeout: 5000 });
    conn.on('error', () => {}); // the operation's own rejection reports it
    try {
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue(queue, { durable: true });
      if (op === 'put') {
        ch.sendToQueue(queue, Buffer.from(value), { persistent: true });
        await ch.waitForConfirms(); // rejects when the broker refuses (nacks) the message
        return 'published';
      }
      const msg = await ch.get(queue, { noAck: false });
      if (!msg) return null;
      ch.ack(msg);
      await ch.close();
      return msg.content.toString();
    } finally {
      await conn.close().catch(() => {});
    }
  },
};

function send(res, status, body) {
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const [label, key] = decodeURIComponent(new URL(req.url, 'http://app').pathname).split('/').filter(Boolean);
    if (!label) return send(res, 200, services.map((s) => ({ name: s.name, label: s.label })));
    const store = Object.hasOwn(stores, label) ? stores[label] : undefined;
    const creds = store && credentialsOf(label);
    if (!creds) return send(res, 404, `no ${label} service is bound\n`);
    if (!key || !['GET', 'PUT'].includes(req.method)) return send(res, 400, 'GET or PUT /<label>/<key>\n');
    try {
      const op = req.method === 'PUT' ? 'put' : 'get';
      const value = await store(creds, op, key, Buffer.concat(chunks).toString('utf8'));
      if (value === null || value === undefined) return send(res, 404, `${key}: not found\n`);
      send(res, 200, String(value));
    } catch (err) {
      send(res, 502, `${label}: ${err && err.message ? err.message : String(err)}\n`);
    }
  });
});

server.listen(appEnv.port, appEnv.bind, () => {
  console.log(`services-demo listening on ${appEnv.bind}:${appEnv.port}; bound: ${services.map((s) => `${s.name} (${s.label})`).join(', ') || 'none'}`);
});
