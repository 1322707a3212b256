#!/usr/bin/env node
// The `ingot` command. A release ships compiled JavaScript (cli/main.js beside this file's
// folder); a checkout runs the TypeScript through tsx.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const compiled = fileURLToPath(new URL('../cli/main.js', import.meta.url));
let cli;
if (existsSync(compiled)) {
  cli = await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../cli/main.ts');
}
await cli.main(process.argv.slice(2));
