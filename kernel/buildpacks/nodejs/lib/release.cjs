// bin/release of the nodejs buildpack: the default web command.
//  - scripts.start, run directly when it is a plain `node FILE ARGS` command without pre/post
//    hooks: an npm process kept alive beside the app costs ~40 MB, most of a 64 MB instance;
//    otherwise `npm start`;
//  - else `node server.js`, else `node <main>`, else `node index.js`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const buildDir = process.argv[2];
const pkg = JSON.parse(fs.readFileSync(path.join(buildDir, 'package.json'), 'utf8'));
const scripts = (pkg && pkg.scripts) || {};
/** A file name as one shell word. */
const word = (f) => (/^[A-Za-z0-9_./=:@%+-]+$/.test(f) ? f : `'${f.replace(/'/g, `'\\''`)}'`);
const exists = (f) => typeof f === 'string' && fs.existsSync(path.join(buildDir, f));

let web;
if (typeof scripts.start === 'string' && scripts.start.trim() !== '') {
  const start = scripts.start.trim();
  const plain = /^node(\s+[A-Za-z0-9_./=:@%+-]+)+$/.test(start) && !scripts.prestart && !scripts.poststart;
  web = plain ? start : 'npm start';
} else if (exists('server.js')) {
  web = 'node server.js';
} else if (exists(pkg.main)) {
  web = `node ${word(pkg.main)}`;
} else if (exists('index.js')) {
  web = 'node index.js';
}

process.stdout.write('---\n');
process.stdout.write(web ? `default_process_types:\n  web: ${JSON.stringify(web)}\n` : 'default_process_types: {}\n');
