/**
 * OTP supervisors on nact: the supervisor behaviour, child specs, the restart intensity window and the
 * whichChildren-based tree printer. Installed: `import * as sup from 'comet-fsm/supervisors'`.
 * See docs/supervisor.md.
 */
export * from './supervisor.js';
export { checkChildSpec, isReportedExit } from './child_spec.js';
export { RestartIntensity, type IntensityVerdict } from './restart_intensity.js';
export { supervisionTree, renderTree, diffTrees, type TreeNode, type TreeNodeStatus, type TreeDiff } from './tree.js';
