// Reads the agent's settings file (/var/vcap/bosh/settings.json, written by the CPI) into a
// validated, defaulted object; overrides from the command line win.
import { readFileSync } from 'node:fs';
import { AgentError } from './errors.ts';
import { AgentSettingsFile, describeIssues } from './protocol.ts';

export function loadSettings(file: string, overrides: { root?: string } = {}): AgentSettingsFile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AgentError('invalid_settings', `Reading agent settings ${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = AgentSettingsFile.safeParse(json);
  if (!parsed.success) throw new AgentError('invalid_settings', `Reading agent settings ${file}: ${describeIssues(parsed.error)}`);
  const settings = parsed.data;
  if (overrides.root) settings.agent.root = overrides.root;
  return settings;
}
