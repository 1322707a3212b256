import test from 'ava';
import { parseConfig } from '../../kernel/component/mod.ts';
import { deaConfig, uidRangeOf } from '../../kernel/dea/config.ts';

const base = 'nats: {servers: ["nats://127.0.0.1:4222"], user: k, password: p}\nbase_dir: /var/vcap/data/dea\n';

test('DEAs on one kernel get uid ranges of their own by index; a configured range wins', (t) => {
  const range = (extra: string) => uidRangeOf(parseConfig(`${base}${extra}`, 'dea.yml', deaConfig));
  t.deepEqual(range(''), { start: 20_000, count: 1000 });
  t.deepEqual(range('index: 1\n'), { start: 21_000, count: 1000 });
  t.deepEqual(range('index: 2\nuid_range: {start: 30000, count: 10}\n'), { start: 30_000, count: 10 });
  const a = range('index: 0\n');
  const b = range('index: 1\n');
  t.true(a.start + a.count <= b.start, 'no overlap');
});
