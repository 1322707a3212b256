// The agent's public API: the protocol catalogue, the permissions renderer and the agent.
export * from './protocol.ts';
export { renderAuthorization, authorizationUsers, agentPermissions, type MbusAuthorizationInput, type MbusUser } from './permissions.ts';
export { parseDrainOutput, type DrainAnswer } from './drain-output.ts';
export { restartDelay, isFailing, recentCrashes, type RestartPolicy } from './backoff.ts';
export { AgentError } from './errors.ts';
export { Agent } from './agent.ts';
export { loadSettings } from './settings.ts';
export { agentCommand } from './command.ts';
