import test from 'ava';
import fc from 'fast-check';
import { detectedName, parseProcfile, parseRelease, selectStartCommand } from '../../kernel/dea/staging/release.ts';
import { renderStagingInfo } from '../../kernel/dea/staging/droplet.ts';
import { parse } from 'yaml';

test('Procfile: name: command lines, comments and blank lines ignored', (t) => {
  const text = '# processes\nweb: node server.js --port $PORT\r\n\nworker:   ./bin/work  \nrelease:bundle exec x\n';
  t.deepEqual(parseProcfile(text), { web: 'node server.js --port $PORT', worker: './bin/work', release: 'bundle exec x' });
  t.deepEqual(parseProcfile(''), {});
});

test('Procfile: a malformed line is refused, naming it', (t) => {
  t.throws(() => parseProcfile('web: ok\njust a command\n'), { message: /Procfile line 2: expected "name: command", got "just a command"/ });
  t.throws(() => parseProcfile('web:\n'), { message: /Procfile line 1: process type web has no command/ });
});

test('release YAML: default_process_types and config_vars', (t) => {
  const r = parseRelease('---\naddons: []\nconfig_vars:\n  RACK_ENV: production\n  WORKERS: 2\ndefault_process_types:\n  web: "node server.js"\n  worker: node work.js\n');
  t.deepEqual(r, { defaultProcessTypes: { web: 'node server.js', worker: 'node work.js' }, configVars: { RACK_ENV: 'production', WORKERS: '2' } });
  t.deepEqual(parseRelease(''), { defaultProcessTypes: {}, configVars: {} }, 'no output: no defaults');
  t.deepEqual(parseRelease('---\ndefault_process_types: {}\n').defaultProcessTypes, {});
  t.is(parseRelease("---\ndefault_process_types:\n  web: 'java -Xmx179m -jar it''s.jar'\n").defaultProcessTypes.web, "java -Xmx179m -jar it's.jar");
});

test('release YAML: what is not the expected shape is refused with a sentence', (t) => {
  t.throws(() => parseRelease('default_process_types: [web]'), { message: /default_process_types is not a mapping/ });
  t.throws(() => parseRelease('- a\n- b\n'), { message: /not a YAML mapping/ });
  t.throws(() => parseRelease('default_process_types:\n  web: {a: 1}\n'), { message: /default_process_types\.web is not a string/ });
  t.throws(() => parseRelease('web: "unclosed\n'), { message: /not YAML/ });
});

test('start command: the user\'s own, else the Procfile\'s web, else the buildpack\'s default', (t) => {
  const release = { defaultProcessTypes: { web: 'npm start' }, configVars: {} };
  const procfile = { web: 'node a.js', worker: 'node w.js' };
  t.deepEqual(selectStartCommand({ user: 'node custom.js', procfile, release }), { command: 'node custom.js', source: 'user' });
  t.deepEqual(selectStartCommand({ procfile, release }), { command: 'node a.js', source: 'procfile' });
  t.deepEqual(selectStartCommand({ user: '  ', procfile: { worker: 'x' }, release }), { command: 'npm start', source: 'buildpack' });
  t.is(selectStartCommand({ procfile: { worker: 'x' }, release: { defaultProcessTypes: {}, configVars: {} } }), undefined);
  t.is(selectStartCommand({}), undefined);
});

test('start command: a non-blank user command always wins', (t) => {
  const cmd = fc.string({ minLength: 1 }).filter((s) => s.trim() !== '');
  fc.assert(
    fc.property(cmd, fc.option(cmd), fc.option(cmd), (user, web, dflt) => {
      const got = selectStartCommand({
        user,
        procfile: web === null ? undefined : { web },
        release: { defaultProcessTypes: dflt === null ? {} : { web: dflt }, configVars: {} },
      });
      return got?.source === 'user' && got.command === user.trim();
    }),
  );
  t.pass();
});

test('detected buildpack: bin/detect\'s first line, else the buildpack\'s name', (t) => {
  t.is(detectedName('\nnode.js 1.2\nmore\n', 'nodejs'), 'node.js 1.2');
  t.is(detectedName('   \n', 'nodejs'), 'nodejs');
});

test('staging_info.yml holds detected_buildpack and start_command', (t) => {
  const info = { detected_buildpack: 'nodejs', start_command: "node server.js --greeting 'hi: there'", buildpack: 'nodejs' };
  t.deepEqual(parse(renderStagingInfo(info)), info);
});
