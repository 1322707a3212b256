// The agent's list_disk: its request and reply shapes, and which disks count as mounted — the
// settings' disks whose path is a mount point in the agent's mount table (BOSH's semantics).
import test from 'ava';
import { mountedDisks, mountPointsOf } from '../../orchestrator/agent/mounts.ts';
import { DiskList, parseRequest } from '../../orchestrator/agent/protocol.ts';

const MOUNTINFO = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '301 290 0:52 / /var rw,relatime - tmpfs ingot-var rw,mode=755',
  '302 301 8:1 /tmp/ingot/cpi-x/data/vms/vm-1/vcap /var/vcap rw,relatime - ext4 /dev/sda1 rw',
  '303 302 8:1 /tmp/ingot/cpi-x/data/disks/disk-1/data /var/vcap/store rw,relatime - ext4 /dev/sda1 rw',
  '304 1 0:60 / /mnt/with\\040space rw - tmpfs none rw',
  '',
].join('\n');

test('list_disk takes no arguments (extra ones are ignored, as in BOSH) and answers a list of cids', (t) => {
  t.like(parseRequest('{"method":"list_disk"}'), { ok: true, method: 'list_disk', args: [] });
  t.like(parseRequest('{"method":"list_disk","arguments":["x"]}'), { ok: true, method: 'list_disk' });
  t.deepEqual(DiskList.parse(['disk-1']), ['disk-1']);
  t.false(DiskList.safeParse({ 'disk-1': '/var/vcap/store' }).success);
});

test('mount points are field 5 of mountinfo, octal escapes undone', (t) => {
  const points = mountPointsOf(MOUNTINFO);
  t.true(points.has('/var/vcap/store'));
  t.true(points.has('/var/vcap'));
  t.true(points.has('/mnt/with space'));
  t.false(points.has('/tmp/ingot/cpi-x/data/disks/disk-1/data'), 'the root within the filesystem is not a mount point');
});

test('a disk is listed only while its path is a mount point; a plain directory under it is not', (t) => {
  const points = mountPointsOf(MOUNTINFO);
  t.deepEqual(mountedDisks({ 'disk-1': '/var/vcap/store' }, points), ['disk-1']);
  t.deepEqual(mountedDisks({ 'disk-1': '/var/vcap/store/' }, points), ['disk-1']);
  t.deepEqual(mountedDisks({ 'disk-2': '/var/vcap/store2' }, points), []);
  const unmounted = mountPointsOf(MOUNTINFO.split('\n').filter((l) => !l.includes(' /var/vcap/store ')).join('\n'));
  t.deepEqual(mountedDisks({ 'disk-1': '/var/vcap/store' }, unmounted), []);
});
