import test from 'ava';
import { InvalidCallError } from '../../orchestrator/cpi/errors.ts';
import { parseRequest } from '../../orchestrator/cpi/request.ts';

const req = (method: string, args: unknown[]) => JSON.stringify({ method, arguments: args, context: { director_uuid: 'x' } });

test('parses a create_vm request with BOSH nulls defaulted', (t) => {
  const call = parseRequest(req('create_vm', ['agent', 'sc-0123456789ab', null, { net: { type: 'manual', ip: '10.0.0.2' } }, null, null]));
  t.is(call.method, 'create_vm');
  t.deepEqual(call.arguments, ['agent', 'sc-0123456789ab', {}, { net: { type: 'manual', ip: '10.0.0.2' } }, [], {}]);
  t.deepEqual(call.context, { director_uuid: 'x' });
});

test('create_disk takes an optional vm cid', (t) => {
  t.deepEqual(parseRequest(req('create_disk', [10, {}])).arguments, [10, {}, null]);
  t.deepEqual(parseRequest(req('create_disk', [10, {}, 'vm-0123456789abcdef'])).arguments, [10, {}, 'vm-0123456789abcdef']);
});

test('metadata values are strings on the way in', (t) => {
  t.deepEqual(parseRequest(req('set_vm_metadata', ['vm-1', { index: 0 }])).arguments, ['vm-1', { index: '0' }]);
});

test('bad requests are InvalidCallErrors naming the problem', (t) => {
  const cases: Array<[string, RegExp]> = [
    ['not json', /not JSON/],
    ['[]', /\(request\)/],
    [JSON.stringify({ arguments: [] }), /method/],
    [req('explode', []), /unknown method "explode"/],
    [req('create_disk', ['big', {}]), /Parsing arguments of create_disk: arguments\[0\]/],
    [req('delete_vm', []), /delete_vm/],
    [req('attach_disk', ['vm-1', 7]), /arguments\[1\]/],
    [req('create_vm', ['a', 'b', {}, { n: { type: 'wired' } }, [], {}]), /arguments\[3\]\.n\.type/],
  ];
  for (const [text, message] of cases) {
    const err = t.throws(() => parseRequest(text), { instanceOf: InvalidCallError }, text);
    t.regex(err?.message ?? '', message, text);
    t.is(err?.type, 'InvalidCall');
  }
});

test('methods of Object.prototype are not methods', (t) => {
  t.throws(() => parseRequest(req('toString', [])), { instanceOf: InvalidCallError });
  t.throws(() => parseRequest(req('constructor', [])), { instanceOf: InvalidCallError });
});
