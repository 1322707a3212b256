// The app-developer commands of the `ingot` CLI (DESIGN.md §2) and the cloud controller API
// client they use. `cli/main.ts` registers the commands; other code may use the client.
import type { Argv } from 'yargs';
import { appCommands } from './commands/apps.ts';
import { authCommands } from './commands/auth.ts';
import { domainCommands } from './commands/domains.ts';
import { envCommands } from './commands/env.ts';
import { eventCommands } from './commands/events.ts';
import { logCommands } from './commands/logs.ts';
import { orgCommands } from './commands/orgs.ts';
import { pushCommands } from './commands/push.ts';
import { quotaCommands } from './commands/quotas.ts';
import { routeCommands } from './commands/routes.ts';
import { serviceCommands } from './commands/services.ts';

export { CloudControllerClient, type Tokens } from './api-client.ts';
export { ClientError, ClientUsageError, ApiRequestError } from './errors.ts';
export { ConfigStore, ingotHome } from './config-store.ts';

/** Adds every app command to the CLI. */
export function registerAppCommands(y: Argv): Argv {
  return [authCommands, orgCommands, quotaCommands, pushCommands, appCommands, logCommands, envCommands, eventCommands, domainCommands, routeCommands, serviceCommands].reduce((acc, add) => add(acc), y);
}
