import test from 'ava';
import { createHash } from 'node:crypto';
import { encode, parseReply, RespError } from '../../kernel/services/nodes/redis/resp.ts';
import { planSettings, redisUri, renderAclFile, renderRedisConf } from '../../kernel/services/nodes/redis/redis-conf.ts';

test('redis.conf: port, address, plan limits, persistence in the unit directory', (t) => {
  const conf = renderRedisConf({ dir: '/var/vcap/store/redis/i-1', host: '10.244.0.7', port: 20001, plan: { memory_mb: 64, max_clients: 50, capacity_units: 1 } });
  const lines = new Set(conf.split('\n'));
  for (const want of [
    'bind 10.244.0.7',
    'port 20001',
    'maxmemory 64mb',
    'maxmemory-policy noeviction',
    'maxclients 50',
    'appendonly yes',
    'dir /var/vcap/store/redis/i-1',
    'aclfile /var/vcap/store/redis/i-1/users.acl',
    'set-proc-title no',
    'daemonize no',
  ]) {
    t.true(lines.has(want), want);
  }
});

test('a plan change: the plan’s limits as CONFIG SET pairs, the same values redis.conf has', (t) => {
  const plan = { memory_mb: 64, max_clients: 50, capacity_units: 1 };
  t.deepEqual(planSettings(plan), ['maxmemory', '64mb', 'maxclients', '50']);
  const conf = new Set(renderRedisConf({ dir: '/d', host: 'h', port: 1, plan }).split('\n'));
  const flat = planSettings(plan);
  for (let i = 0; i < flat.length; i += 2) t.true(conf.has(`${flat[i]} ${flat[i + 1]}`));
});

test('ACL file: the admin and each binding, passwords only as hashes', (t) => {
  const acl = renderAclFile('admin-secret', [{ username: 'b-1', password: 'pw-1' }]);
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  t.is(acl, `user default on #${sha('admin-secret')} ~* &* +@all\nuser b-1 on ~* &* +@all -@admin #${sha('pw-1')}\n`);
  t.false(acl.includes('admin-secret') || acl.includes('pw-1'));
});

test('redis URI: user and password escaped', (t) => {
  t.is(redisUri({ host: 'h', port: 1, username: 'u@x', password: 'p/w' }), 'redis://u%40x:p%2Fw@h:1');
});

test('RESP: commands encode as arrays of bulk strings', (t) => {
  t.is(encode(['SET', 'k', 'vé']).toString(), '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nvé\r\n');
});

test('RESP: replies of every type, and incomplete ones wait', (t) => {
  const parse = (s: string) => parseReply(Buffer.from(s), 0)?.value;
  t.is(parse('+OK\r\n'), 'OK');
  t.is(parse(':42\r\n'), 42);
  t.is(parse('$5\r\nhello\r\n'), 'hello');
  t.is(parse('$-1\r\n'), null);
  t.deepEqual(parse('*2\r\n$1\r\na\r\n:1\r\n'), ['a', 1]);
  const err = parse('-OOM command not allowed\r\n');
  t.true(err instanceof RespError);
  t.is((err as RespError).kind, 'OOM');
  t.is(parseReply(Buffer.from('$5\r\nhel'), 0), undefined);
  t.is(parseReply(Buffer.from('*2\r\n$1\r\na\r\n'), 0), undefined);
  t.throws(() => parseReply(Buffer.from('?\r\n'), 0));
});
