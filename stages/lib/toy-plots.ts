// The toy stages' charts, from their objects to the plots' arrays: histograms and scatters of the
// samples against the exact density of the (noised) mixture, and the DDPM schedule. plots/ draws
// arrays and labels; what a schedule or a mixture says is worked out here.
import type { DdpmSchedule } from '../../core/diffusion/ddpm.ts';
import { axisMarginal, type GaussianMixture } from '../../core/diffusion/mixture.ts';
import { densityCurve, type Mixture1d } from '../../core/stats.ts';
import type { Tensor } from '../../core/tensor.ts';
import { lineChart, levelHistograms, type Canvas, type LevelPanel } from '../../plots/index.ts';
import { scatterLevels, type ScatterPanel } from '../../plots/scatter-levels.ts';

/** One histogram panel per row of `history`, under the density of the 1-D mixture at that level. */
export function histogramPanels(
  history: ArrayLike<number>[],
  exact: Mixture1d[],
  titles: string[],
): LevelPanel[] {
  return history.map((samples, i) => {
    const { x, y, range } = densityCurve(exact[i]);
    return { title: titles[i], samples, density: { x, y }, range };
  });
}

/** The circles of radius 2 std around each component of a 2-D mixture. */
export function rings(mix: GaussianMixture): ScatterPanel['rings'] {
  return mix.map((c) => ({ x: c.mean[0], y: c.mean[1], r: 2 * c.std }));
}

/** Column j of an [n, 2] tensor. */
export const column = (x: Tensor, j: number) => x.data.filter((_, k) => k % 2 === j);

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

type Snapshot = { t: number; x: Tensor };

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
  return levelHistograms(histogramPanels(history, exact, titles), title);
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
  const panels = [
    ...snapshots.map((s) => ({
      title: snapshotTitle(schedule, s.t),
      x: column(s.x, 0),
      y: column(s.x, 1),
      rings: rings(schedule.marginal(data, s.t)),
    })),
    { title: 'samples, after t = 0', x: column(sample, 0), y: column(sample, 1), rings: rings(data) },
  ];
  return scatterLevels(panels, title, { range });
}
