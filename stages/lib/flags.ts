// The flags several programs share, declared once: --backend (every program), and the toy DDPM stages'
// --beta-schedule, --prediction and --variance. A bad value is a UsageError naming the flag and its
// choices. Importing this file registers the backends a program can choose (ts is always there).
import { backendChoices } from '../../core/kernels/select.ts';
import '../../core/kernels/wasm/index.ts';
import '../../gpu/index.ts';
import { BETA_SCHEDULES, type BetaSchedule } from '../../core/diffusion/ddpm.ts';
import type { ReverseVariance } from '../../core/diffusion/schedulers.ts';
import { PREDICTIONS, type Prediction } from '../../core/diffusion/targets.ts';
import { UsageError, type FlagSpec } from './cli.ts';

/** The backend a program uses unless --backend says otherwise: DIFFUSION_BACKEND, else auto. */
export function defaultBackend(): string {
  return process.env.DIFFUSION_BACKEND ?? 'auto';
}

/** The --backend flag every program takes. */
export const BACKEND_FLAG = {
  backend: {
    type: 'string',
    default: defaultBackend(),
    help: `kernels: ${backendChoices().join('|')} (or DIFFUSION_BACKEND)`,
  },
} as const satisfies Record<string, FlagSpec>;

/** The number of noise steps T of the DDPM stages (a schedule of T numbers; at most 100,000). */
export const T_FLAG = {
  T: { type: 'int', default: 1000, min: 2, max: 100000, help: 'number of noise steps' },
} as const satisfies Record<string, FlagSpec>;

/** The flags of the toy DDPM stages that choose the schedule and the prediction target. */
export const DDPM_FLAGS = {
  'beta-schedule': {
    type: 'string',
    default: 'linear',
    help: 'linear (beta 1e-4..0.02, the paper) or cosine',
  },
  prediction: { type: 'string', default: 'eps', help: 'what the network predicts: eps, x0 or v' },
} as const satisfies Record<string, FlagSpec>;

/** The flag of the DDPM stages that sample with the ancestral step: its variance, betaTilde or beta. */
export const VARIANCE_FLAG = {
  variance: { type: 'string', default: 'betaTilde', help: 'reverse-step variance, betaTilde or beta' },
} as const satisfies Record<string, FlagSpec>;

/** `value` if it is one of `choices`, else a usage error of `command` naming --`flag` and the choices. */
export function choiceFlag<T extends string>(
  value: string,
  choices: readonly T[],
  flag: string,
  command: string,
): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new UsageError(
    `--${flag} must be one of ${choices.join(', ')}, got '${value}'`,
    `usage: npm run ${command} -- --help`,
  );
}

/** The values of DDPM_FLAGS, checked. */
export function ddpmFlagValues(
  flags: { 'beta-schedule': string; prediction: string },
  command: string,
): { betaSchedule: BetaSchedule; prediction: Prediction } {
  return {
    betaSchedule: choiceFlag(flags['beta-schedule'], BETA_SCHEDULES, 'beta-schedule', command),
    prediction: choiceFlag(flags.prediction, PREDICTIONS, 'prediction', command),
  };
}

/** The value of VARIANCE_FLAG, checked. */
export function varianceFlagValue(flags: { variance: string }, command: string): ReverseVariance {
  return choiceFlag(flags.variance, ['betaTilde', 'beta'] as const, 'variance', command);
}
