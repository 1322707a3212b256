import test from 'ava';
import { AgentSettingsFile, parseRequest, subjects } from '../../orchestrator/agent/protocol.ts';

const sha = 'a'.repeat(64);

test('parses a ping with its reply_to', (t) => {
  t.deepEqual(parseRequest(JSON.stringify({ method: 'ping', arguments: [], reply_to: 'director.d.a1.u' })), {
    ok: true,
    method: 'ping',
    args: [],
    replyTo: 'director.d.a1.u',
  });
});

test('arguments default to an empty list', (t) => {
  t.like(parseRequest('{"method":"get_state"}'), { ok: true, method: 'get_state' });
});

test('parses an apply spec and fills its defaults', (t) => {
  const r = parseRequest(JSON.stringify({ method: 'apply', arguments: [{ name: 'web', jobs: [{ name: 'web', blobstore_id: 'b1', sha256: `sha256:${sha}` }] }] }));
  t.true(r.ok);
  if (!r.ok) return;
  t.like(r.args[0], { name: 'web', index: 0, deployment: '', packages: [], jobs: [{ name: 'web', properties: {} }] });
});

test('not JSON, an unknown method and bad arguments read as sentences', (t) => {
  t.deepEqual(parseRequest('{'), { ok: false, message: 'Parsing the request: not JSON' });
  t.like(parseRequest('{"method":"fly","reply_to":"r.1"}'), { ok: false, replyTo: 'r.1' });
  t.regex((parseRequest('{"method":"fly"}') as { message: string }).message, /^Unknown message "fly"; known: ping, get_state, apply/);
  t.deepEqual(parseRequest('{"arguments":[]}'), { ok: false, message: 'Parsing the request: method: Required' });
  t.deepEqual(parseRequest('{"method":"get_task","arguments":[]}'), {
    ok: false,
    message: 'Parsing the arguments of get_task: arguments: Array must contain at least 1 element(s)',
  });
  t.regex(
    (parseRequest(JSON.stringify({ method: 'apply', arguments: [{ name: 'w', jobs: [{ name: '../x', blobstore_id: 'b', sha256: sha }] }] })) as { message: string }).message,
    /arguments\.0\.jobs\.0\.name: a name is letters/,
  );
  t.regex((parseRequest('{"method":"drain","arguments":["later"]}') as { message: string }).message, /arguments\.0: Invalid enum value/);
  t.deepEqual(parseRequest('{"method":"ping","reply_to":"director.>"}'), { ok: false, message: 'Parsing the request: reply_to: a reply subject has no spaces or wildcards' });
  t.deepEqual(parseRequest('null'), { ok: false, message: 'Parsing the request: Expected object, received null' });
});

test('settings from the local CPI parse, with the agent tunables defaulted', (t) => {
  const s = AgentSettingsFile.parse({
    agent_id: 'a-1',
    mbus: { url: 'nats://10.244.0.1:4222', user: 'agent-a-1', password: 'p' },
    blobstore: { url: 'http://10.244.0.1:25250' },
    networks: { default: { ip: '10.244.0.5' } },
    disks: { persistent: { 'disk-1': '/var/vcap/store' } },
    vm: { name: 'vm-1' },
    env: {},
  });
  t.is(s.agent.root, '/var/vcap');
  t.is(s.agent.failing_crashes, 5);
  t.throws(() => AgentSettingsFile.parse({ agent_id: 'a.b', mbus: { url: 'x' }, blobstore: { url: 'http://x' } }));
});

test('subjects', (t) => {
  t.is(subjects.agent('a1'), 'agent.a1');
  t.is(subjects.heartbeat('a1'), 'hm.agent.heartbeat.a1');
  t.is(subjects.alert('a1'), 'hm.agent.alert.a1');
  t.is(subjects.directorReply('d', 'a1', 'u'), 'director.d.a1.u');
  t.is(subjects.directorRepliesFor('a1'), 'director.*.a1.>');
});
