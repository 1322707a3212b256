import test from 'ava';
import { agentPermissions, authorizationUsers, renderAuthorization } from '../../orchestrator/agent/permissions.ts';

test('an agent may publish its heartbeats, alerts and replies addressed to it, and subscribe only to its own subject', (t) => {
  t.deepEqual(agentPermissions('a1'), {
    publish: { allow: ['hm.agent.heartbeat.a1', 'hm.agent.alert.a1', 'director.*.a1.>'] },
    subscribe: { allow: ['agent.a1'] },
    allow_responses: { max: 1 },
  });
});

test('no agent gets _INBOX.> (it would read every other agent\'s replies)', (t) => {
  const users = authorizationUsers({ director: { user: 'd', password: 'p' }, agents: [{ agent_id: 'a1', user: 'u1', password: 'p1' }] });
  t.false(JSON.stringify(users[1]).includes('_INBOX'));
});

test('renders a nats-server authorization block with the director unrestricted', (t) => {
  const block = renderAuthorization({
    director: { user: 'director', password: 'dp' },
    healthMonitor: { user: 'hm', password: 'hp' },
    agents: [
      { agent_id: 'a1', user: 'agent-a1', password: 'p1' },
      { agent_id: 'a2', user: 'agent-a2', password: 'p2' },
    ],
  });
  t.true(block.startsWith('authorization {\n  users: [\n'));
  t.true(block.includes('{"user":"director","password":"dp"}\n'));
  t.true(block.includes('"subscribe":{"allow":["hm.agent.heartbeat.*","hm.agent.alert.*"]}'));
  t.true(block.includes('{"user":"agent-a2","password":"p2","permissions":{"publish":{"allow":["hm.agent.heartbeat.a2","hm.agent.alert.a2","director.*.a2.>"]}'));
});

test('refuses duplicate users and agent ids that would widen a subject', (t) => {
  t.throws(() => renderAuthorization({ director: { user: 'x', password: 'p' }, agents: [{ agent_id: 'a', user: 'x', password: 'q' }] }), {
    message: 'Rendering mbus authorization: the user "x" appears twice',
  });
  t.throws(() => renderAuthorization({ director: { user: 'd', password: 'p' }, agents: [{ agent_id: 'a.>', user: 'x', password: 'q' }] }), {
    message: /may not hold dots or wildcards/,
  });
});
