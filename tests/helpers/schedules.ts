// The schedules the schedule and objective tests run over, at a few timesteps each.
import { DdpmSchedule } from '../../core/diffusion/ddpm.ts';
import { EdmSchedule, InterpolationSchedule, type NoiseSchedule } from '../../core/diffusion/schedule.ts';

export const SCHEDULES: { schedule: NoiseSchedule; ts: number[] }[] = [
  { schedule: DdpmSchedule.linear(1000), ts: [0, 250, 999] },
  { schedule: DdpmSchedule.cosine(1000), ts: [0, 500, 998] },
  { schedule: new InterpolationSchedule(1000), ts: [0, 500, 998] },
  { schedule: new EdmSchedule(1000), ts: [0, 600, 999] },
];
