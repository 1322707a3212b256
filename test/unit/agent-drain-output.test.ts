import test from 'ava';
import { parseDrainOutput } from '../../orchestrator/agent/drain-output.ts';

test('a positive integer is a wait, a negative one asks to be polled', (t) => {
  t.deepEqual(parseDrainOutput('1\n'), { kind: 'wait', seconds: 1 });
  t.deepEqual(parseDrainOutput('0'), { kind: 'wait', seconds: 0 });
  t.deepEqual(parseDrainOutput('-15\n'), { kind: 'poll', seconds: 15 });
});

test('the last non-empty line counts', (t) => {
  t.deepEqual(parseDrainOutput('draining connections\n  7  \n\n'), { kind: 'wait', seconds: 7 });
});

test('anything else is refused with a sentence', (t) => {
  t.throws(() => parseDrainOutput(''), { message: 'Parsing drain output: the script printed nothing; it must print an integer' });
  t.throws(() => parseDrainOutput('soon'), { message: 'Parsing drain output: expected an integer, got "soon"' });
  t.throws(() => parseDrainOutput('1.5'), { message: /expected an integer/ });
});
