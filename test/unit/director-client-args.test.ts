// The director commands' flags (orchestrator/client/director-args.ts) and the cloud-config
// diff (text-diff.ts): each mistake one sentence naming the flag.
import test from 'ava';
import { ClientUsageError } from '../../kernel/client/errors.ts';
import { deploymentArg, taskIdArg, taskOutputMode, tasksQuery } from '../../orchestrator/client/director-args.ts';
import { diffLines, renderDiff } from '../../orchestrator/client/text-diff.ts';

test('a task id is a whole number from 1', (t) => {
  t.is(taskIdArg('12'), 12);
  t.is(taskIdArg(7), 7);
  for (const bad of ['0', '-1', '1.5', 'abc', '', undefined, '99999999999999999999']) {
    const err = t.throws(() => taskIdArg(bad), { instanceOf: ClientUsageError });
    t.regex(err!.message, /expected a task number, e\.g\. ingot task 12/);
  }
});

test('tasks: running ones by default, --recent the last 30, --recent N the last N, -d filters', (t) => {
  t.deepEqual(tasksQuery(undefined, undefined), { states: ['queued', 'processing', 'cancelling'], limit: 1000 });
  t.deepEqual(tasksQuery('', undefined), { limit: 30 });
  t.deepEqual(tasksQuery(true, 'ingot'), { limit: 30, deployment: 'ingot' });
  t.deepEqual(tasksQuery('5', undefined), { limit: 5 });
  t.is(t.throws(() => tasksQuery('x', undefined), { instanceOf: ClientUsageError })!.message, '--recent x: expected a number of tasks from 1 to 10000');
  t.throws(() => tasksQuery('0', undefined), { instanceOf: ClientUsageError });
  t.is(t.throws(() => tasksQuery(undefined, ' '), { instanceOf: ClientUsageError })!.message, 'name the deployment: ingot tasks -d DEPLOYMENT');
});

test('task output: one of --event, --debug and --result, else the rendered log', (t) => {
  t.is(taskOutputMode({}), 'log');
  t.is(taskOutputMode({ event: true, debug: false }), 'event');
  t.is(taskOutputMode({ result: true }), 'result');
  t.is(t.throws(() => taskOutputMode({ event: true, result: true }), { instanceOf: ClientUsageError })!.message, 'give one of --event, --debug and --result, not --event and --result');
});

test('-d DEPLOYMENT is required where a command acts on one', (t) => {
  t.is(deploymentArg('ingot', 'delete-deployment'), 'ingot');
  t.is(t.throws(() => deploymentArg(undefined, 'delete-deployment'))!.message, 'name the deployment: ingot delete-deployment -d DEPLOYMENT');
});

test('the cloud-config diff: added, removed, context and elisions; nothing when equal', (t) => {
  t.deepEqual(renderDiff('a: 1\n', 'a: 1\n'), []);
  t.deepEqual(renderDiff('', 'a: 1\nb: 2\n'), ['+ a: 1', '+ b: 2']);
  const before = ['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7', 'l8', 'l9', 'l10'].join('\n');
  const after = ['l1', 'l2', 'l3', 'l4', 'l5', 'L6', 'l7', 'l8', 'l9', 'l10'].join('\n');
  t.deepEqual(renderDiff(before, after, 1), ['  ...', '  l5', '- l6', '+ L6', '  l7', '  ...']);
  t.deepEqual(
    diffLines('x\ny\n', 'y\nz\n').map((l) => `${l.op}${l.text}`),
    ['-x', ' y', '+z'],
  );
});
