import assert from 'node:assert/strict';
import {test} from 'node:test';
import {
	createArgv,
	decodeAttr,
	formatBytes,
	lvFromRow,
	parseReport,
	parseSize,
	roundUpToExtent,
	snapshotArgv,
	vgFromRow,
} from '../source/host/lvm.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const origin = 'f3e8d23f-21c0-417d-9b5e-91bb4da9b926.disk0';

// Shaped as lvs(8) prints it with `--reportformat json --units b --nosuffix -o <fields>`: every value a string,
// sizes in bytes without a suffix, empty strings for fields that do not apply (origin, snap_percent).
const lvsJson = JSON.stringify({
	report: [
		{
			lv: [
				{
					lv_name: origin,
					vg_name: 'all',
					lv_uuid: 'aaaaaa-1111-2222-3333-4444-5555-666666',
					lv_path: `/dev/all/${origin}`,
					lv_size: String(30 * GiB),
					lv_attr: 'owi-aos---',
					origin: '',
					snap_percent: '',
					lv_tags: 'originstname+gallifrey.xivo.vm.farm',
				},
				{
					lv_name: 'gallifrey-dev-farmclone-snap',
					vg_name: 'all',
					lv_uuid: 'bbbbbb-1111-2222-3333-4444-5555-666666',
					lv_path: '/dev/all/gallifrey-dev-farmclone-snap',
					lv_size: String(GiB),
					lv_attr: 'swi-aos---',
					origin,
					snap_percent: '12.34',
					lv_tags: '',
				},
			],
		},
	],
});

test('parses an lvs JSON report into typed volumes', () => {
	const [source, snapshot] = parseReport(lvsJson, 'lv').map((row) => lvFromRow(row));
	assert.ok(source && snapshot);
	assert.equal(source.size, 30 * GiB);
	assert.equal(source.path, `/dev/all/${origin}`);
	assert.equal(source.snapshot, false);
	assert.equal(source.open, true);
	assert.equal(source.snapPercent, undefined);
	assert.deepEqual(source.tags, ['originstname+gallifrey.xivo.vm.farm']);
	assert.equal(snapshot.snapshot, true);
	assert.equal(snapshot.origin, origin);
	assert.equal(snapshot.snapPercent, 12.34);
	assert.equal(snapshot.invalid, false);
	assert.deepEqual(snapshot.tags, []);
});

test('reads rows of the asked kind from every report section', () => {
	const json = JSON.stringify({report: [{vg: [{vg_name: 'all'}]}, {vg: [{vg_name: 'other'}]}, {lv: []}]});
	assert.deepEqual(
		parseReport(json, 'vg').map((row) => row['vg_name']),
		['all', 'other'],
	);
	assert.deepEqual(parseReport(json, 'lv'), []);
	assert.throws(() => parseReport('{"lv": []}', 'lv'), /not an LVM JSON report/);
});

test('refuses a size that is not a number of bytes', () => {
	assert.throws(() => lvFromRow({lv_name: 'x', lv_size: '30.00g', lv_attr: '-wi-a-----'}), /lv_size/);
	assert.throws(() => vgFromRow({vg_name: 'all', vg_size: '', vg_free: '0', vg_extent_size: '4194304'}), /vg_size/);
});

test('parses a vgs JSON row', () => {
	const vg = vgFromRow({
		vg_name: 'all',
		vg_size: String(100 * GiB),
		vg_free: String(2 * GiB),
		vg_extent_size: '4194304',
	});
	assert.deepEqual(vg, {name: 'all', size: 100 * GiB, free: 2 * GiB, extentSize: 4 * MiB});
});

test('decodes lv_attr as lvs(8) documents it', () => {
	assert.deepEqual(decodeAttr('-wi-ao----'), {snapshot: false, active: true, invalid: false, open: true});
	assert.deepEqual(decodeAttr('-wi-------'), {snapshot: false, active: false, invalid: false, open: false});
	assert.deepEqual(decodeAttr('swi-a-s---'), {snapshot: true, active: true, invalid: false, open: false});
	// An overflowed snapshot: state I (invalid), still mapped.
	assert.deepEqual(decodeAttr('swi-I-s---'), {snapshot: true, active: true, invalid: true, open: false});
	// Merging snapshot (S in the type column) that is also open.
	assert.equal(decodeAttr('Swi-aos---').snapshot, true);
	// The origin of a snapshot is not itself a snapshot.
	assert.equal(decodeAttr('owi-aos---').snapshot, false);
	assert.equal(decodeAttr('').open, false);
});

test('parseSize follows lvcreate: powers of two in any case, MiB by default', () => {
	assert.equal(parseSize('1G'), GiB);
	assert.equal(parseSize('1g'), GiB);
	assert.equal(parseSize('512'), 512 * MiB);
	assert.equal(parseSize('512m'), 512 * MiB);
	assert.equal(parseSize('1.5G'), 1.5 * GiB);
	assert.equal(parseSize('2048s'), MiB);
	assert.equal(parseSize('4096b'), 4096);
	assert.equal(parseSize('64k'), 64 * 1024);
	assert.equal(parseSize('2T'), 2 * 1024 * GiB);
	for (const bad of ['', 'G', '1X', '-1G', '+1G', '1 G B', '1e3']) {
		assert.throws(() => parseSize(bad), /not an LVM size/, bad);
	}
});

test('rounds requests up to whole extents', () => {
	assert.equal(roundUpToExtent(1, 4 * MiB), 4 * MiB);
	assert.equal(roundUpToExtent(4 * MiB, 4 * MiB), 4 * MiB);
	assert.equal(roundUpToExtent(GiB + 1, 4 * MiB), GiB + 4 * MiB);
});

test('formats byte counts for people', () => {
	assert.equal(formatBytes(30 * GiB), '30.0 GiB');
	assert.equal(formatBytes(1536 * 1024), '1.5 MiB');
	assert.equal(formatBytes(1023), '1023 B');
});

test('builds lvcreate command lines with exact byte sizes', () => {
	assert.deepEqual(snapshotArgv('all', origin, 'snap', '1G'), [
		'lvcreate',
		'--snapshot',
		'--size',
		'1G',
		'--name',
		'snap',
		`all/${origin}`,
	]);
	const create = createArgv('all', 'gallifrey-dev', 30 * GiB);
	assert.equal(create[create.indexOf('--size') + 1], `${30 * GiB}b`);
	assert.equal(create.at(-1), 'all');
});
