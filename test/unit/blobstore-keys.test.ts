// What names a blob: kinds, keys (the digest of the bits) and the API's /blobs/<kind>/<key>.
import test from 'ava';
import { blobRelativePath, isBlobKind, keyProblem, parseBlobPath } from '../../kernel/blobstore/keys.ts';

const SHA256 = 'ab'.repeat(32);
const SHA1 = 'cd'.repeat(20);

test('packages and droplets are keyed by sha256, resources by sha1, lower-case hex only', (t) => {
  t.is(keyProblem('packages', SHA256), null);
  t.is(keyProblem('droplets', SHA256), null);
  t.is(keyProblem('resources', SHA1), null);
  t.is(keyProblem('resources', SHA256), `"${SHA256}" is not a resources key: expected its sha1 as 40 lower-case hex digits`);
  t.is(keyProblem('packages', SHA1), `"${SHA1}" is not a packages key: expected its sha256 as 64 lower-case hex digits`);
  t.not(keyProblem('packages', SHA256.toUpperCase()), null);
  t.not(keyProblem('packages', `${SHA256.slice(0, 63)}g`), null);
  t.not(keyProblem('droplets', ''), null);
  t.not(keyProblem('droplets', `../${SHA256.slice(3)}`), null);
});

test('only the three kinds are kinds', (t) => {
  t.true(isBlobKind('packages') && isBlobKind('droplets') && isBlobKind('resources'));
  t.false(isBlobKind('tmp'));
  t.false(isBlobKind('Packages'));
  t.false(isBlobKind('toString'));
});

test("a blob's place on disk is <kind>/<first two chars>/<key>", (t) => {
  t.is(blobRelativePath('droplets', SHA256), `droplets/ab/${SHA256}`);
  t.is(blobRelativePath('resources', SHA1), `resources/cd/${SHA1}`);
});

test('/blobs/<kind>/<key> names a blob; anything else says why not', (t) => {
  t.deepEqual(parseBlobPath(`/blobs/packages/${SHA256}`), { kind: 'packages', key: SHA256 });
  t.deepEqual(parseBlobPath(`/blobs/resources/${SHA1}`), { kind: 'resources', key: SHA1 });
  t.deepEqual(parseBlobPath(`/blobs/tmp/${SHA256}`), { problem: '"tmp" is not a blob kind: expected one of packages, droplets, resources' });
  t.deepEqual(parseBlobPath(`/blobs/resources/${SHA256}`), { problem: `"${SHA256}" is not a resources key: expected its sha1 as 40 lower-case hex digits` });
  t.deepEqual(parseBlobPath('/blobs/packages'), { problem: '"/blobs/packages" is not a blob path: expected /blobs/<kind>/<key>' });
  t.true('problem' in parseBlobPath(`/blobs/packages/${SHA256}/more`));
  t.true('problem' in parseBlobPath(`/blobs/packages/%2e%2e%2f${SHA256.slice(6)}`), 'an encoded traversal is no key');
  t.deepEqual(parseBlobPath('/blobs/packages/%E0%A4%A'), { problem: 'the blob path is not valid percent-encoding' });
});
