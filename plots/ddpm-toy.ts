// The charts of the DDPM toy stages: the schedule, and the reverse samples at several timesteps
// against the exact noised density q(x_t), as histograms (1-D data) or scatters (2-D data).
import type { DdpmSchedule } from '../core/diffusion/ddpm.ts';
import { axisMarginal, type GaussianMixture } from '../core/diffusion/mixture.ts';
import type { Tensor } from '../core/tensor.ts';
import type { Canvas } from './canvas.ts';
import { lineChart } from './charts.ts';
import { scatterLevels } from './scatter-levels.ts';
import { levelHistograms } from './toy.ts';

type Snapshot = { t: number; x: Tensor };

/** sqrt(alphaBar_t) (what is left of x_0), sqrt(1 - alphaBar_t) (the noise) and beta_t against t. */
export function scheduleChart(schedule: DdpmSchedule, name = 'Linear'): Canvas {
  const ts = Array.from({ length: schedule.T }, (_, t) => t);
  const betaScale = 1 / Math.max(...schedule.betas);
  return lineChart({
    title: `${name} schedule, T = ${schedule.T}: how much of x0 and of noise x_t holds`,
    xLabel: 'timestep t',
    yLabel: 'coefficient',
    series: [
      { name: 'sqrt(alphaBar_t): signal', x: ts, y: ts.map((t) => schedule.signal(t)) },
      { name: 'sqrt(1 - alphaBar_t): noise', x: ts, y: ts.map((t) => schedule.noise(t)) },
      {
        name: `beta_t x ${betaScale.toPrecision(2)}`,
        x: ts,
        y: Array.from(schedule.betas, (b) => b * betaScale),
        dashed: true,
      },
    ],
  });
}

const snapshotTitle = (schedule: DdpmSchedule, t: number) =>
  t === schedule.T - 1 ? `start x_${t}: pure noise` : `x_${t}: noise std ${schedule.noise(t).toPrecision(2)}`;

/** 1-D data: one histogram per snapshot over the exact q(x_t), then the samples over the data density. */
export function reverseHistograms(
  schedule: DdpmSchedule,
  data: GaussianMixture,
  snapshots: Snapshot[],
  sample: Tensor,
  title: string,
): Canvas {
  const history = [...snapshots.map((s) => s.x.data), sample.data];
  const exact = [...snapshots.map((s) => axisMarginal(schedule.marginal(data, s.t))), axisMarginal(data)];
  const titles = [...snapshots.map((s) => snapshotTitle(schedule, s.t)), 'samples, after t = 0'];
  return levelHistograms(history, exact, titles, title);
}

/** 2-D data: one scatter per snapshot with the 2-std circles of the exact q(x_t), then the samples. */
export function reverseScatters(
  schedule: DdpmSchedule,
  data: GaussianMixture,
  snapshots: Snapshot[],
  sample: Tensor,
  title: string,
  range: [number, number] = [-3, 3],
): Canvas {
  const column = (x: Tensor, j: number) => x.data.filter((_, k) => k % 2 === j);
  const panels = [
    ...snapshots.map((s) => ({
      title: snapshotTitle(schedule, s.t),
      x: column(s.x, 0),
      y: column(s.x, 1),
      exact: schedule.marginal(data, s.t),
    })),
    { title: 'samples, after t = 0', x: column(sample, 0), y: column(sample, 1), exact: data },
  ];
  return scatterLevels(panels, title, { range });
}
