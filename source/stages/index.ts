import {balloonStage} from './balloon.js';
import {copyStage} from './copy.js';
import {createVolumeStage} from './create-volume.js';
import {dhcpHostStage} from './dhcp-host.js';
import {dnsRecordStage} from './dns-record.js';
import {dropSnapshotStage} from './drop-snapshot.js';
import {firewallRestartStage} from './firewall-restart.js';
import {firewallRuleStage} from './firewall-rule.js';
import {ganetiInstanceStage} from './ganeti-instance.js';
import {identityStage} from './identity.js';
import {macStage} from './mac.js';
import {reloadServicesStage} from './reload-services.js';
import {reverseProxyStage} from './reverse-proxy.js';
import {snapshotStage} from './snapshot.js';
import {startVmStage} from './start-vm.js';
import type {Stage} from './types.js';

/** DESIGN.md's table, in order. */
export const allStages: readonly Stage[] = [
	snapshotStage,
	createVolumeStage,
	copyStage,
	dropSnapshotStage,
	identityStage,
	dnsRecordStage,
	macStage,
	dhcpHostStage,
	reloadServicesStage,
	ganetiInstanceStage,
	firewallRuleStage,
	firewallRestartStage,
	startVmStage,
	balloonStage,
	reverseProxyStage,
];
