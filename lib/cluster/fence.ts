/**
 * Fencing's last step: end every session of this node, as a supervisor ends its children on
 * shutdown (each FSM's terminate answers its held poll with what it has; its clients then get
 * `404 unknown_session` and set up again). The node itself lives on, under a new node id.
 */
import type { ParentRef } from '../otp/nact.js';
import { whereis } from '../otp/registry.js';
import { CONNECTION_SUP_NAME } from '../comet/comet_sup.js';
import * as supervisor from '../../supervisors/supervisor.js';

/** Terminate every connection FSM under the connection supervisor of `system`. */
export async function endConnections(system: ParentRef): Promise<void> {
  const sup = whereis(system, CONNECTION_SUP_NAME) as supervisor.SupRef | undefined;
  if (!sup) return;
  const children = await supervisor.whichChildren(sup);
  await Promise.all(children.flatMap((c) => (c.pid === undefined || c.pid === 'restarting' ? [] : [supervisor.terminateChild(sup, c.pid)])));
}
