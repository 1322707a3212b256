// The director killed with SIGKILL while a task runs: started again on the same data, the task
// is error with the sentence, its lock is free, queued work runs, and nothing else is lost.
import anyTest, { type TestFn } from 'ava';
import { readFileSync } from 'node:fs';
import { directorConfig, DirectorProcess, killNats, tarball, type DirectorFixture } from '../helpers/director.ts';

const test = anyTest as TestFn<{ fixture: DirectorFixture; procs: DirectorProcess[] }>;

test.before(async (t) => {
  t.context = { fixture: await directorConfig({ tasks: { max_concurrent: 1 } }), procs: [] };
});

test.after.always(async (t) => {
  for (const p of t.context.procs) await p.kill('SIGKILL');
  if (t.context.fixture) killNats(t.context.fixture);
});

test.serial('SIGKILL mid-task: the task is error, its lock free, queued tasks run, uploads and history kept', async (t) => {
  const first = await DirectorProcess.start(t.context.fixture);
  t.context.procs.push(first);
  const api = first.client();
  const stemcell = await tarball({ 'stemcell.MF': 'name: s\nversion: "1"\noperating_system: debian-12\n' });
  t.is((await api.request('POST', '/stemcells', undefined, { raw: stemcell })).status, 201);
  const done = await api.request('POST', '/test/sleep', { deployment: 'earlier', steps: 1, step_ms: 1 });
  await api.waitForTask(done.body.id, ['done']);
  const running = await api.request('POST', '/test/sleep', { deployment: 'ingot', steps: 100, step_ms: 100 });
  // max_concurrent is 1: this one waits queued behind the running one.
  const queued = await api.request('POST', '/test/sleep', { deployment: 'other', steps: 1, step_ms: 1 });
  await api.waitForTask(running.body.id, ['processing']);
  t.is((await api.request('GET', `/tasks/${queued.body.id}`)).body.state, 'queued');
  const natsBefore = first.natsPid;
  t.truthy(natsBefore);
  t.deepEqual(await first.kill('SIGKILL'), { code: null, signal: 'SIGKILL' });

  const second = await DirectorProcess.start(t.context.fixture);
  t.context.procs.push(second);
  const api2 = second.client();
  const died = (await api2.request('GET', `/tasks/${running.body.id}`)).body;
  t.is(died.state, 'error');
  t.is(died.result, 'director restarted while the task ran');
  t.true(second.logs.some((l) => l.msg === 'tasks left running by a previous director were failed'));
  // The lock is free: the same deployment takes a new task at once.
  const again = await api2.request('POST', '/test/sleep', { deployment: 'ingot', steps: 1, step_ms: 1 });
  t.is(again.status, 202, again.text);
  t.is((await api2.waitForTask(queued.body.id, ['done'])).result, 'slept 1 steps');
  await api2.waitForTask(again.body.id, ['done']);
  // Nothing else lost: the stemcell, the finished task and its events; the mbus was adopted.
  t.deepEqual((await api2.request('GET', '/stemcells')).body.map((s: { name: string }) => s.name), ['s']);
  t.is((await api2.request('GET', `/tasks/${done.body.id}`)).body.state, 'done');
  t.is((await api2.request('GET', `/tasks/${done.body.id}/output?type=event`)).text.trim().split('\n').length, 2);
  t.is(second.natsPid, natsBefore);
  // The events the killed task wrote before it died are still there.
  t.true((await api2.request('GET', `/tasks/${running.body.id}/output?type=event`)).text.includes('"Sleeping"'));
  await second.kill('SIGKILL');
});

test.serial('SIGTERM stops the director cleanly, nats-server included', async (t) => {
  const proc = await DirectorProcess.start(t.context.fixture);
  t.context.procs.push(proc);
  const nats = proc.natsPid!;
  t.deepEqual(await proc.kill('SIGTERM'), { code: 0, signal: null });
  // Gone, or a zombie waiting for whoever adopted it (the first director spawned it) to reap it.
  const state = (() => {
    try {
      return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${nats}/stat`, 'utf8'))?.[1];
    } catch {
      return 'gone';
    }
  })();
  t.true(state === 'gone' || state === 'Z', `nats-server ${nats} is in state ${state}`);
});
