import test from 'ava';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadJobs, ReleaseError } from '../../orchestrator/release/mod.ts';
import { scratchDir } from '../helpers/tmp.ts';

const root = scratchDir('release-jobs');
test.after.always(() => rmSync(root, { recursive: true, force: true }));

function write(path: string, text: string): void {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), text);
}

test('every problem of every job folder is reported at once, each naming its file', (t) => {
  write('jobs/web/spec.yml', 'name: webby\npackages: [ingot, libfoo]\ntemplates: {web.yml: config/web.yml, gone.yml: config/gone.yml}\nproperties: {web.port: {description: p}}\n');
  write('jobs/web/templates/web.yml', 'port: ((p:web.prot))\n');
  write('jobs/web/templates/stray.yml', 'x: 1\n');
  write('jobs/nospec/templates/a.yml', 'x: 1\n');
  write('jobs/broken/spec.yml', 'name: broken\nproperties: [oops\n');
  const err = t.throws(() => loadJobs(join(root, 'jobs'), root, new Set(['ingot'])), { instanceOf: ReleaseError });
  t.deepEqual(err!.problems, [
    'jobs/broken/spec.yml:3 Flow sequence in block collection must be sufficiently indented and end with a ]',
    'jobs/nospec/spec.yml: missing (every folder of kernel/jobs is a job with a spec.yml)',
    'jobs/web/spec.yml: name is webby, but the folder is web',
    'jobs/web/spec.yml packages[1]: libfoo is not a package of the release (ingot)',
    'jobs/web/templates/stray.yml: not named in the spec\'s templates',
    "jobs/web, template web.yml: ((p:web.prot)): unknown property web.prot (not in the job's spec)",
    'jobs/web, template gone.yml: the template file is missing',
  ]);
});
