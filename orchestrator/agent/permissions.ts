// The mbus authorization block for nats-server: one user per agent, confined to its own
// subjects, and the director with full rights. Pure.
//
// Why no `_INBOX.>`: every agent could then subscribe to every inbox and read the replies of
// all other agents (and publish forged replies into them). Instead an agent may publish only
// to `director.*.<its id>.>` (BOSH's per-agent reply subjects, named in a request's
// `reply_to`), and `allow_responses` lets it answer a plain NATS request once on the
// requester's inbox without being able to subscribe to any inbox at all.
import { subjects } from './protocol.ts';

export interface MbusUser {
  user: string;
  password: string;
}

export interface MbusAuthorizationInput {
  director: MbusUser;
  /** The health monitor reads heartbeats and alerts only. */
  healthMonitor?: MbusUser;
  agents: Array<MbusUser & { agent_id: string }>;
}

export interface MbusPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  allow_responses?: { max: number };
}

export function agentPermissions(agentId: string): MbusPermissions {
  return {
    publish: { allow: [subjects.heartbeat(agentId), subjects.alert(agentId), subjects.directorRepliesFor(agentId)] },
    subscribe: { allow: [subjects.agent(agentId)] },
    allow_responses: { max: 1 },
  };
}

export function authorizationUsers(input: MbusAuthorizationInput): Array<MbusUser & { permissions?: MbusPermissions }> {
  const seen = new Set<string>();
  const users: Array<MbusUser & { permissions?: MbusPermissions }> = [];
  const add = (u: MbusUser & { permissions?: MbusPermissions }): void => {
    if (seen.has(u.user)) throw new Error(`Rendering mbus authorization: the user "${u.user}" appears twice`);
    seen.add(u.user);
    users.push(u);
  };
  add({ user: input.director.user, password: input.director.password });
  if (input.healthMonitor) {
    add({ ...input.healthMonitor, permissions: { publish: { allow: [] }, subscribe: { allow: ['hm.agent.heartbeat.*', 'hm.agent.alert.*'] } } });
  }
  for (const a of input.agents) {
    if (!/^[A-Za-z0-9_-]+$/.test(a.agent_id)) throw new Error(`Rendering mbus authorization: the agent id "${a.agent_id}" may not hold dots or wildcards`);
    add({ user: a.user, password: a.password, permissions: agentPermissions(a.agent_id) });
  }
  return users;
}

/** The `authorization { users: [...] }` block of a nats-server config (its JSON-like syntax). */
export function renderAuthorization(input: MbusAuthorizationInput): string {
  const users = authorizationUsers(input);
  const lines = users.map((u) => `    ${JSON.stringify(u)}`);
  return ['authorization {', '  users: [', ...lines, '  ]', '}'].join('\n') + '\n';
}
