import test from 'ava';
import { renderMbusConfig } from '../../orchestrator/director/mbus.ts';

const base = { host: '127.0.0.1', port: 4222, logFile: '/d/mbus/nats.log', pidFile: '/d/mbus/nats.pid', director: { user: 'director', password: 'dp' } };

test('the config listens where told, logs and writes its pid where the director looks', (t) => {
  const text = renderMbusConfig({ ...base, agents: [] });
  t.true(text.includes('listen: "127.0.0.1:4222"\n'));
  t.true(text.includes('log_file: "/d/mbus/nats.log"\n'));
  t.true(text.includes('pid_file: "/d/mbus/nats.pid"\n'));
});

test('the director has every subject; the health monitor reads heartbeats and alerts only', (t) => {
  const text = renderMbusConfig({ ...base, healthMonitor: { user: 'health-monitor', password: 'hp' }, agents: [] });
  t.true(text.includes('{"user":"director","password":"dp"}\n'));
  t.true(text.includes('{"user":"health-monitor","password":"hp","permissions":{"publish":{"allow":[]},"subscribe":{"allow":["hm.agent.heartbeat.*","hm.agent.alert.*"]}}}'));
});

test('each agent is confined to its own subjects and may answer requests once', (t) => {
  const text = renderMbusConfig({ ...base, agents: [{ agent_id: 'a1', user: 'agent-a1', password: 'p1' }, { agent_id: 'a2', user: 'agent-a2', password: 'p2' }] });
  t.true(
    text.includes(
      '{"user":"agent-a1","password":"p1","permissions":{"publish":{"allow":["hm.agent.heartbeat.a1","hm.agent.alert.a1","director.*.a1.>"]},"subscribe":{"allow":["agent.a1"]},"allow_responses":{"max":1}}}',
    ),
  );
  t.true(text.includes('"subscribe":{"allow":["agent.a2"]}'));
  t.false(text.includes('_INBOX'));
});

test('an agent id with a dot or wildcard is refused (it would widen its subjects)', (t) => {
  t.throws(() => renderMbusConfig({ ...base, agents: [{ agent_id: 'a.*', user: 'x', password: 'y' }] }), { message: /may not hold dots or wildcards/ });
});
