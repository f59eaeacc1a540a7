/**
 * OTP supervisors on nact: the supervisor behaviour, child specs and the restart intensity window.
 * See docs/supervisor.md.
 */
export * from './supervisor.js';
export { checkChildSpec, isReportedExit } from './child_spec.js';
export { RestartIntensity, type IntensityVerdict } from './restart_intensity.js';
