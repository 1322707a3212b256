import test from 'ava';
import { deploymentVerb } from '../../cli/verbs.ts';

test('a shared verb with -d anywhere is a platform command', (t) => {
  t.is(deploymentVerb(['-d', 'ingot', 'restart', 'router/0']), 'restart');
  t.is(deploymentVerb(['restart', 'router/0', '-d', 'ingot']), 'restart');
  t.is(deploymentVerb(['logs', '--deployment', 'ingot', 'router/0']), 'logs');
  t.is(deploymentVerb(['--deployment=ingot', 'stop']), 'stop');
  t.is(deploymentVerb(['-dingot', 'ssh', 'nats/1']), 'ssh');
});

test('without -d, or with another verb, it is not', (t) => {
  t.is(deploymentVerb(['restart', 'web']), undefined);
  t.is(deploymentVerb(['logs', 'web', '--recent']), undefined);
  t.is(deploymentVerb(['-d', 'ingot', 'instances']), undefined);
  t.is(deploymentVerb(['push', 'web', '--', '-d', 'x', 'logs']), undefined);
  // The value of -d is never taken for the verb.
  t.is(deploymentVerb(['-d', 'logs']), undefined);
});
