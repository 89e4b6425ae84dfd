/**
 * `netctl trace --probe` on real labs, the second half (each file stays
 * within a few minutes): flannel udp across a router that drops UDP 8285. The
 * faults of the kernel-oracle suite are in trace-probe-oracle-lab.test.ts.
 */
import {underlayDropCase} from '../helpers/probe-lab.js'

underlayDropCase('pbfu', 'flannel-udp', 8285)
