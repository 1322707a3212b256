// The version of this Ingot: package.json's, which a release built with an explicit version
// carries as that version (orchestrator/release/packages.ts). /varz and `ingot version` show it,
// so an operator sees which release every process runs.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const INGOT_VERSION: string = (JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;
