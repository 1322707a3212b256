import test from 'ava';
import { replies, subjects } from '../../kernel/bus/mod.ts';

test('service subjects: discover and find per label', (t) => {
  t.is(subjects.serviceNodeDiscover('redis').subject, 'services.redis.discover');
  t.is(subjects.serviceNodeFind('redis').subject, 'services.redis.find');
  t.throws(() => subjects.serviceNodeFind('re.dis'));
});

test('service node announce: plan capacity and interval are optional', (t) => {
  const schema = subjects.serviceNodeAnnounce.schema;
  t.true(schema.safeParse({ node_id: 'n', plans: ['default'], available_capacity: 3 }).success);
  t.true(schema.safeParse({ node_id: 'n', plans: ['default'], available_capacity: 3, plan_capacity: { default: 3 }, interval_s: 10 }).success);
  t.false(schema.safeParse({ node_id: 'n', plans: ['default'], available_capacity: 3, plan_capacity: { default: -1 } }).success);
});

test('service node replies: a refusal carries a known code', (t) => {
  t.true(replies.serviceNode.safeParse({ ok: false, code: 'no_capacity', error: 'no capacity: …', node_id: 'n' }).success);
  t.true(replies.serviceNode.safeParse({ ok: true, existed: true, credentials: { uri: 'redis://…' } }).success);
  t.false(replies.serviceNode.safeParse({ ok: false, code: 'oops' }).success);
  t.true(replies.serviceNodeFind.safeParse({ node_id: 'n', instance_id: 'i', plan: 'default', fingerprint: 'f' }).success);
  t.false(replies.serviceNodeFind.safeParse({ node_id: 'n', instance_id: 'i' }).success);
});
