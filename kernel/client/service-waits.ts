// Waiting for a broker: a service instance's or binding's asynchronous operation polled through
// the controller until it ends, each new description printed on the way (as the cf CLI does with
// --wait). INGOT_SERVICE_TIMEOUT (seconds, default 600) bounds the wait.
import type { ServiceBinding, ServiceInstance } from './api-types.ts';
import { print } from './commands/common.ts';
import { ClientError } from './errors.ts';
import type { SpaceSession } from './session.ts';

const DEFAULT_SERVICE_TIMEOUT_S = 600;
const POLL_MS = 1000;

/** The service timeout: INGOT_SERVICE_TIMEOUT seconds, else 600. */
function serviceDeadline(): number {
  const timeoutS = Number(process.env.INGOT_SERVICE_TIMEOUT ?? DEFAULT_SERVICE_TIMEOUT_S);
  return Date.now() + (Number.isFinite(timeoutS) && timeoutS > 0 ? timeoutS : DEFAULT_SERVICE_TIMEOUT_S) * 1000;
}

type Operated = { last_operation?: { type: string; state: string; description?: string | null | undefined } | undefined };

/**
 * Polls with `refetch` until the last operation of what `first` is ends — or it is gone
 * (undefined: an asynchronous delete ends so); prints each new description on the way.
 */
async function untilOperationEnds<T extends Operated>(first: T, refetch: () => Promise<T | undefined>, stillText: string, say: (line: string) => void = print): Promise<T | undefined> {
  const deadline = serviceDeadline();
  let current: T | undefined = first;
  let said = '';
  while (current?.last_operation?.state === 'in progress') {
    const op = current.last_operation;
    const line = `${op.type} in progress${op.description ? `: ${op.description}` : ''}`;
    if (line !== said) say(line);
    said = line;
    if (Date.now() > deadline) throw new ClientError('timeout', stillText.replace('%s', op.type));
    await new Promise((r) => setTimeout(r, POLL_MS));
    current = await refetch();
  }
  return current;
}

/** Polls an instance until its last operation ends; prints each new description. */
export async function waitForOperation(s: SpaceSession, instance: ServiceInstance): Promise<ServiceInstance> {
  const done = await untilOperationEnds(instance, () => s.client.serviceInstance(instance.guid), `service instance ${instance.name} is still %s in progress; see ingot service ${instance.name}`);
  return done ?? instance;
}

/**
 * A binding (or key) just created or deleted, once its broker is done with it: an asynchronous
 * one is polled; one that did not succeed is a one-line error saying what was being done.
 */
export async function bindingSettled(s: SpaceSession, binding: ServiceBinding | undefined, doing: string, say: (line: string) => void = print): Promise<void> {
  if (!binding) return;
  const done = await untilOperationEnds(binding, () => s.client.serviceBinding(binding.guid), `${doing}: the binding is still %s in progress; see ingot services`, say);
  const op = done?.last_operation;
  if (!op || op.state === 'succeeded') return;
  throw new ClientError('api_error', `${doing}: ${op.type} ${op.state}${op.description ? `: ${op.description}` : ''}`);
}
