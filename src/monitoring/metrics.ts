/**
 * A small metrics registry: counters, gauges and histograms with labels, rendered in the
 * Prometheus text exposition format, version 0.0.4.
 *
 * Recording is one Map lookup (keyed by the label values) and a few additions, so it is cheap
 * enough for every request. Label values are passed as arrays in the order of the metric's label
 * names, which avoids building an object per observation.
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * const requests = registry.counter("requests_total", "Requests served.", ["model", "code"]);
 * requests.inc(["mnist", "OK"]);
 * const latency = registry.histogram("latency_seconds", "Latency.", ["model"], [0.01, 0.1, 1]);
 * latency.observe(["mnist"], 0.02);
 * registry.render(); // "# HELP requests_total Requests served.\n# TYPE requests_total counter\n…"
 * ```
 *
 * @module
 */

/** The content type of {@linkcode Registry.render}'s output. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The Prometheus metric types this registry exports. */
export type MetricType = "counter" | "gauge" | "histogram";

/** Label values, in the order of the metric's label names. */
export type LabelValues = readonly string[];

/** One series of a counter or gauge. */
export interface ScalarSeries {
  /** The label values, in label-name order. */
  readonly labels: LabelValues;
  /** The current value. */
  value: number;
}

/** One series of a histogram. */
export interface HistogramSeries {
  /** The label values, in label-name order. */
  readonly labels: LabelValues;
  /**
   * Observations per bucket, not cumulative: `counts[i]` holds those in `(bounds[i-1],
   * bounds[i]]`, and the last element those above every bound (the `+Inf` bucket).
   */
  readonly counts: Float64Array;
  /** The sum of all observed values. */
  sum: number;
  /** The number of observations. */
  count: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Joins label values into a map key; NUL cannot appear in a sensible label value. */
const SEP = "\u0000";

/** The default cap on label sets per metric, against unbounded label values (model names). */
export const DEFAULT_MAX_SERIES = 10_000;

/** Options shared by every metric. */
export interface MetricOptions {
  /** At most this many label sets; observations for further ones are dropped (default 10,000). */
  readonly maxSeries?: number;
}

function keyOf(labels: LabelValues): string {
  return labels.length === 1 ? labels[0] : labels.join(SEP);
}

/** Escapes a label value: backslash, double quote and line feed, as the format requires. */
export function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value)
    ? value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
    : value;
}

/** Escapes HELP text: backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/**
 * Formats a sample value as the format wants it: integers plainly, `NaN`, `+Inf`, `-Inf`.
 *
 * @param v the value
 * @returns its text
 */
export function formatValue(v: number): string {
  if (Number.isFinite(v)) return String(v);
  if (Number.isNaN(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

/**
 * Formats a number with six significant digits the way C's `%g` (and absl's `StrCat(double)`,
 * which TF Serving's exporter uses for bucket bounds) does: `18`, `32.4`, `104.976`,
 * `1.46449e+09`, `1e-05`. Used for `le` labels, so bounds read as upstream's do.
 *
 * @param v the number
 * @returns its text
 */
export function formatG6(v: number): string {
  if (!Number.isFinite(v)) return formatValue(v);
  if (v === 0) return "0";
  const [mantissa, e] = v.toExponential(5).split("e");
  const exp = Number(e);
  if (exp < -4 || exp >= 6) {
    const m = mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa;
    return `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const fixed = v.toFixed(5 - exp);
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}

/**
 * Bucket bounds `scale · growth^i` for `i` in `[0, count)`, as TensorFlow's
 * `monitoring::Buckets::Exponential(scale, growth, count)`; the `+Inf` bucket is implied.
 *
 * @example
 * ```ts
 * exponentialBuckets(10, 1.8, 33); // [10, 18, 32.4, …] µs up to ~20 minutes, TF Serving's layout
 * ```
 */
export function exponentialBuckets(scale: number, growth: number, count: number): number[] {
  const bounds: number[] = [];
  // Repeated multiplication, as TF does, so the bounds are the same doubles.
  let bound = scale;
  for (let i = 0; i < count; i++) {
    bounds.push(bound);
    bound *= growth;
  }
  return bounds;
}

/** What every metric has; the registry renders through this. */
abstract class Metric<S extends { readonly labels: LabelValues }> {
  /** The metric name. */
  readonly name: string;
  /** The HELP text. */
  readonly help: string;
  /** The label names, in the order label values are given. */
  readonly labelNames: readonly string[];
  /** Observations dropped because the label-set cap was reached. */
  dropped = 0;
  /** The exposition type. */
  abstract readonly type: MetricType;
  readonly #series = new Map<string, S>();
  readonly #maxSeries: number;
  readonly #onDrop?: (metric: Metric<S>) => void;
  #generation = 0;

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    options: MetricOptions,
    onDrop?: (metric: Metric<S>) => void,
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`Cannot define metric "${name}": bad name`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__")) {
        throw new Error(`Cannot define metric "${name}": bad label name "${l}"`);
      }
    }
    if (new Set(labelNames).size !== labelNames.length) {
      throw new Error(`Cannot define metric "${name}": repeated label name`);
    }
    this.name = name;
    this.help = help;
    this.labelNames = [...labelNames];
    this.#maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
    this.#onDrop = onDrop;
  }

  /** Makes a fresh series. */
  protected abstract create(labels: LabelValues): S;

  /** The series of these label values, created on first use; undefined past the cap. */
  protected cell(labels: LabelValues): S | undefined {
    const key = keyOf(labels);
    const found = this.#series.get(key);
    if (found) return found;
    if (labels.length !== this.labelNames.length) {
      throw new Error(
        `Cannot record metric "${this.name}": ${labels.length} label values for ` +
          `${this.labelNames.length} label names`,
      );
    }
    if (this.#series.size >= this.#maxSeries) {
      this.dropped++;
      this.#onDrop?.(this);
      return undefined;
    }
    const s = this.create([...labels]);
    this.#series.set(key, s);
    return s;
  }

  /**
   * The series of these label values, created on first use; undefined past the label-set cap
   * (the drop is counted, as for a recording). A caller may keep the series and record into it
   * directly ({@linkcode Counter.incSeries}, {@linkcode Histogram.observeSeries}) for as long
   * as {@linkcode Metric.generation} is unchanged, so a hot path builds no key per call.
   */
  child(labels: LabelValues): S | undefined {
    return this.cell(labels);
  }

  /** Bumped by every {@linkcode Metric.reset}: series kept from before are no longer rendered. */
  get generation(): number {
    return this.#generation;
  }

  /** The series of these label values if it exists. */
  get(labels: LabelValues): S | undefined {
    return this.#series.get(keyOf(labels));
  }

  /** Every series, in creation order. */
  series(): IterableIterator<S> {
    return this.#series.values();
  }

  /** Forgets every series (a label-less metric keeps one at zero). */
  reset(): void {
    this.#generation++;
    this.#series.clear();
    if (this.labelNames.length === 0) this.cell([]);
  }

  /** Appends this metric's exposition lines. */
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    // Sorted by label values, so scrapes are stable and diffable.
    const keys = [...this.#series.keys()].sort();
    for (const k of keys) this.renderSeries(this.#series.get(k)!, out);
  }

  /** Appends one series' sample lines. */
  protected abstract renderSeries(s: S, out: string[]): void;

  /** `{a="x",b="y"` without the closing brace, or "" without labels. */
  protected labelText(labels: LabelValues): string {
    let text = "";
    for (let i = 0; i < labels.length; i++) {
      text += `${i === 0 ? "{" : ","}${this.labelNames[i]}="${escapeLabelValue(labels[i])}"`;
    }
    return text;
  }
}

/** A value that only goes up (requests served, bytes read). */
export class Counter extends Metric<ScalarSeries> {
  /** Always "counter". */
  readonly type = "counter";

  protected create(labels: LabelValues): ScalarSeries {
    return { labels, value: 0 };
  }

  /**
   * Adds to the series of these label values.
   *
   * @param labels label values, in label-name order
   * @param by the increment (default 1)
   * @throws RangeError for a negative increment
   */
  inc(labels: LabelValues = [], by = 1): void {
    if (!(by >= 0)) throw new RangeError(`Cannot decrease counter "${this.name}" by ${-by}`);
    const s = this.cell(labels);
    if (s) s.value += by;
  }

  /**
   * Adds to a series got from {@linkcode Metric.child}.
   *
   * @throws RangeError for a negative increment
   */
  incSeries(s: ScalarSeries, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`Cannot decrease counter "${this.name}" by ${-by}`);
    s.value += by;
  }

  /** The value of a series (0 if never touched). */
  value(labels: LabelValues = []): number {
    return this.get(labels)?.value ?? 0;
  }

  protected renderSeries(s: ScalarSeries, out: string[]): void {
    const l = this.labelText(s.labels);
    out.push(`${this.name}${l}${l ? "}" : ""} ${formatValue(s.value)}`);
  }
}

/** A value that goes up and down (versions loaded, memory in use). */
export class Gauge extends Metric<ScalarSeries> {
  /** Always "gauge". */
  readonly type = "gauge";

  protected create(labels: LabelValues): ScalarSeries {
    return { labels, value: 0 };
  }

  /** Sets the series of these label values. */
  set(labels: LabelValues, value: number): void {
    const s = this.cell(labels);
    if (s) s.value = value;
  }

  /** Adds to the series of these label values (negative to subtract). */
  inc(labels: LabelValues = [], by = 1): void {
    const s = this.cell(labels);
    if (s) s.value += by;
  }

  /** The value of a series (0 if never touched). */
  value(labels: LabelValues = []): number {
    return this.get(labels)?.value ?? 0;
  }

  protected renderSeries(s: ScalarSeries, out: string[]): void {
    const l = this.labelText(s.labels);
    out.push(`${this.name}${l}${l ? "}" : ""} ${formatValue(s.value)}`);
  }
}

/** A distribution over fixed buckets (latencies), with a sum and a count. */
export class Histogram extends Metric<HistogramSeries> {
  /** Always "histogram". */
  readonly type = "histogram";
  /** The finite upper bounds, ascending; `+Inf` is implied. */
  readonly bounds: readonly number[];
  readonly #bounds: Float64Array;
  readonly #le: string[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    bounds: readonly number[],
    options: MetricOptions,
    onDrop?: (metric: Metric<HistogramSeries>) => void,
  ) {
    if (labelNames.includes("le")) {
      throw new Error(`Cannot define histogram "${name}": "le" is reserved`);
    }
    super(name, help, labelNames, options, onDrop);
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
        throw new Error(`Cannot define histogram "${name}": bounds must be finite and ascending`);
      }
    }
    this.bounds = [...bounds];
    this.#bounds = Float64Array.from(bounds);
    this.#le = [...bounds.map(formatG6), "+Inf"];
  }

  protected create(labels: LabelValues): HistogramSeries {
    return { labels, counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 };
  }

  /**
   * Records one observation in the series of these label values.
   *
   * @param labels label values, in label-name order
   * @param value the observed value; it lands in the first bucket whose bound is `>=` it
   */
  observe(labels: LabelValues, value: number): void {
    const s = this.cell(labels);
    if (s) this.observeSeries(s, value);
  }

  /** Records one observation in a series got from {@linkcode Metric.child}. */
  observeSeries(s: HistogramSeries, value: number): void {
    // Binary search for the first bound >= value; NaN goes to +Inf, as Prometheus clients do.
    const b = this.#bounds;
    let lo = 0;
    let hi = b.length;
    if (Number.isNaN(value)) lo = hi;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[mid] < value) lo = mid + 1;
      else hi = mid;
    }
    s.counts[lo]++;
    s.sum += value;
    s.count++;
  }

  protected renderSeries(s: HistogramSeries, out: string[]): void {
    const l = this.labelText(s.labels);
    const bucket = `${this.name}_bucket${l}${l ? "," : "{"}le="`;
    let cumulative = 0;
    for (let i = 0; i < s.counts.length; i++) {
      cumulative += s.counts[i];
      out.push(`${bucket}${this.#le[i]}"} ${cumulative}`);
    }
    const close = l ? "}" : "";
    out.push(`${this.name}_sum${l}${close} ${formatValue(s.sum)}`);
    out.push(`${this.name}_count${l}${close} ${s.count}`);
  }
}

/** Options of a {@linkcode Registry}. */
export interface RegistryOptions {
  /** Called when a metric drops an observation because it reached its label-set cap. */
  readonly onDrop?: (metric: { readonly name: string }) => void;
}

/** A set of metrics with unique names, rendered together. */
export class Registry {
  readonly #metrics = new Map<string, Metric<ScalarSeries> | Metric<HistogramSeries>>();
  readonly #collectors: (() => void)[] = [];
  readonly #onDrop?: (metric: { readonly name: string }) => void;

  /** @param options what to do when a metric reaches its label-set cap */
  constructor(options: RegistryOptions = {}) {
    this.#onDrop = options.onDrop;
  }

  #add<M extends Metric<ScalarSeries> | Metric<HistogramSeries>>(metric: M): M {
    if (this.#metrics.has(metric.name)) {
      throw new Error(`Cannot define metric "${metric.name}": already defined`);
    }
    this.#metrics.set(metric.name, metric);
    metric.reset();
    return metric;
  }

  /**
   * Defines a counter.
   *
   * @param name the metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`)
   * @param help one line saying what it counts
   * @param labelNames its label names
   * @throws Error for a bad or duplicate name
   */
  counter(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    options: MetricOptions = {},
  ): Counter {
    return this.#add(new Counter(name, help, labelNames, options, this.#onDrop));
  }

  /** Defines a gauge; see {@linkcode Registry.counter}. */
  gauge(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    options: MetricOptions = {},
  ): Gauge {
    return this.#add(new Gauge(name, help, labelNames, options, this.#onDrop));
  }

  /**
   * Defines a histogram.
   *
   * @param bounds the finite bucket upper bounds, ascending (`+Inf` is added)
   * @throws Error for a bad or duplicate name, a label named `le`, or bad bounds
   */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    bounds: readonly number[],
    options: MetricOptions = {},
  ): Histogram {
    return this.#add(new Histogram(name, help, labelNames, bounds, options, this.#onDrop));
  }

  /** Registers a function run before every render, to set gauges computed on demand. */
  onCollect(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /** A metric by name. */
  metric(name: string): Counter | Gauge | Histogram | undefined {
    return this.#metrics.get(name) as Counter | Gauge | Histogram | undefined;
  }

  /** Renders every metric in the text exposition format 0.0.4, in definition order. */
  render(): string {
    for (const collect of this.#collectors) collect();
    const out: string[] = [];
    for (const m of this.#metrics.values()) m.render(out);
    return out.join("\n") + "\n";
  }
}
