// Public API of the plotting library: PNG charts with no dependency beyond pngjs.
//
//   import { lineChart } from '../plots/index.ts';
//   lineChart({ title: 'Training loss', xLabel: 'step', yLabel: 'MSE', series: [...], logY: true })
//     .save('out/loss.png');

export {
  BLACK,
  Canvas,
  PALETTE,
  WHITE,
  lighten,
  paletteColor,
  textHeight,
  textWidth,
  type Color,
  type Rect,
  type StrokeOptions,
  type TextOptions,
} from './canvas.ts';
export { CAP_HEIGHT, GLYPH_HEIGHT, getGlyph, type Glyph } from './font.ts';
export {
  formatLogTick,
  formatTicks,
  logTicks,
  niceStep,
  niceTicks,
  tickStep,
  type LogTicks,
} from './ticks.ts';
export {
  Axes,
  FRAME_COLOR,
  GRID_COLOR,
  MINOR_GRID_COLOR,
  TEXT_COLOR,
  Scale,
  type AxesOptions,
  type AxisRange,
  type LegendEntry,
  type LegendMarker,
  type Tick,
} from './axes.ts';
export {
  ChartCanvas,
  lineChart,
  scatterChart,
  type ChartBaseOptions,
  type LineChartOptions,
  type LineSeries,
  type ScatterChartOptions,
  type ScatterSeries,
} from './charts.ts';
export {
  histogram,
  histogramChart,
  type Curve,
  type Histogram,
  type HistogramChartOptions,
} from './histogram.ts';
export { imageGrid, panelGrid, type ImageGridOptions, type PanelGridOptions } from './grids.ts';
export * from './toy.ts';
