/**
 * A strict parser for the Prometheus text exposition format 0.0.4, for tests: every line must be
 * a HELP, a TYPE, a comment, blank, or a well-formed sample of the family declared last, and
 * histograms must be whole (cumulative buckets ending in `+Inf`, `_sum`, `_count`).
 *
 * @module
 */

/** One sample line. */
export interface Sample {
  /** The sample name (for histograms: `<family>_bucket`, `_sum`, `_count`). */
  readonly name: string;
  /** Its labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** Its value. */
  readonly value: number;
}

/** One metric family. */
export interface Family {
  /** The family name. */
  readonly name: string;
  /** The HELP text, unescaped. */
  help?: string;
  /** The TYPE. */
  type?: string;
  /** Its samples, in order. */
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseValue(text: string, where: string): number {
  if (text === "NaN") return NaN;
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (!FLOAT.test(text)) throw new Error(`${where}: bad value "${text}"`);
  return Number(text);
}

function unescape(text: string, where: string, allowQuote: boolean): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const n = text[++i];
    if (n === "\\") out += "\\";
    else if (n === "n") out += "\n";
    else if (n === '"' && allowQuote) out += '"';
    else throw new Error(`${where}: bad escape "\\${n ?? ""}"`);
  }
  return out;
}

/** The family a sample name belongs to, given the declared types. */
function familyOf(name: string, families: Map<string, Family>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (families.get(base)?.type === "histogram") return base;
    }
  }
  return name;
}

function parseSample(line: string, where: string): Sample {
  const m = NAME.exec(line);
  if (!m) throw new Error(`${where}: no metric name in "${line}"`);
  const name = m[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    while (line[i] !== "}") {
      const lm = LABEL.exec(line.slice(i));
      if (!lm) throw new Error(`${where}: bad label name at column ${i + 1}`);
      const label = lm[0];
      i += label.length;
      if (line[i] !== "=" || line[i + 1] !== '"') {
        throw new Error(`${where}: expected ="…" after label ${label}`);
      }
      i += 2;
      let raw = "";
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\") raw += line[i++];
        raw += line[i++];
      }
      if (line[i] !== '"') throw new Error(`${where}: unterminated label value`);
      i++;
      if (label in labels) throw new Error(`${where}: repeated label ${label}`);
      labels[label] = unescape(raw, where, true);
      if (line[i] === ",") i++;
      else if (line[i] !== "}") throw new Error(`${where}: expected , or } at column ${i + 1}`);
    }
    i++;
  }
  if (line[i] !== " ") throw new Error(`${where}: expected a space before the value`);
  const parts = line.slice(i + 1).split(" ");
  if (parts.length < 1 || parts.length > 2 || parts[0] === "") {
    throw new Error(`${where}: expected a value and an optional timestamp`);
  }
  if (parts.length === 2 && !/^-?\d+$/.test(parts[1])) {
    throw new Error(`${where}: bad timestamp "${parts[1]}"`);
  }
  return { name, labels, value: parseValue(parts[0], where) };
}

/**
 * Parses an exposition and checks every line.
 *
 * @param text the page
 * @returns the families by name, in order
 * @throws Error naming the line of the first problem
 */
export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("The exposition must end with a line feed");
  const families = new Map<string, Family>();
  let current: Family | undefined;
  const closed = new Set<string>();
  const lines = text.slice(0, -1).split("\n");
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, f = { name, samples: [] });
    return f;
  };
  const enter = (name: string, where: string) => {
    if (current?.name === name) return;
    if (current) closed.add(current.name);
    if (closed.has(name)) throw new Error(`${where}: family ${name} is not contiguous`);
    current = family(name);
  };
  lines.forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ""] = m;
      if (!NAME.test(name) || NAME.exec(name)![0] !== name) {
        throw new Error(`${where}: bad metric name "${name}"`);
      }
      enter(name, where);
      const f = current!;
      if (kind === "HELP") {
        if (f.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        f.help = unescape(rest, where, false);
      } else {
        if (f.type !== undefined) throw new Error(`${where}: second TYPE for ${name}`);
        if (f.samples.length > 0) throw new Error(`${where}: TYPE after samples of ${name}`);
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type "${rest}"`);
        f.type = rest;
      }
      return;
    }
    const sample = parseSample(line, where);
    enter(familyOf(sample.name, families), where);
    current!.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

function seriesKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(labels).filter(([k]) => k !== "le").sort());
}

/** Checks one histogram family: per series, cumulative buckets ending in +Inf = _count. */
function checkHistogram(f: Family): void {
  const series = new Map<
    string,
    { le: number[]; counts: number[]; sum?: number; count?: number }
  >();
  const get = (labels: Readonly<Record<string, string>>) => {
    const k = seriesKey(labels);
    let s = series.get(k);
    if (!s) series.set(k, s = { le: [], counts: [] });
    return s;
  };
  for (const s of f.samples) {
    if (s.name === `${f.name}_bucket`) {
      if (!("le" in s.labels)) throw new Error(`${f.name}: bucket without le`);
      const b = get(s.labels);
      b.le.push(parseValue(s.labels.le, `${f.name} le`));
      b.counts.push(s.value);
    } else if (s.name === `${f.name}_sum`) get(s.labels).sum = s.value;
    else if (s.name === `${f.name}_count`) get(s.labels).count = s.value;
    else throw new Error(`${f.name}: unexpected sample ${s.name}`);
  }
  for (const [k, s] of series) {
    const where = `${f.name}${k}`;
    if (s.le.length === 0 || s.le[s.le.length - 1] !== Infinity) {
      throw new Error(`${where}: the last bucket must be le="+Inf"`);
    }
    for (let i = 1; i < s.le.length; i++) {
      if (!(s.le[i] > s.le[i - 1])) throw new Error(`${where}: le not ascending`);
      if (s.counts[i] < s.counts[i - 1]) throw new Error(`${where}: buckets not cumulative`);
    }
    if (s.sum === undefined || s.count === undefined) throw new Error(`${where}: no _sum/_count`);
    if (s.count !== s.counts[s.counts.length - 1]) {
      throw new Error(`${where}: _count ${s.count} != +Inf bucket ${s.counts.at(-1)}`);
    }
  }
}

/**
 * The value of one sample.
 *
 * @param families parsed families
 * @param name the sample name
 * @param labels labels that must all match (other labels are ignored)
 * @returns the first matching sample's value, or undefined if none matches
 */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
