/**
 * `netctl trace --probe` with the lab's nodes reached over SSH (lab up --ssh,
 * --transport ssh): the counters and the send go through the same ssh2
 * transport as collection does, across a router that drops UDP 8472.
 */
import {underlayDropCase} from '../helpers/probe-lab.js'

underlayDropCase('pbsv', 'flannel-vxlan', 8472, {ssh: true})
