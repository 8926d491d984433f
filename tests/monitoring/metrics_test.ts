import assert from "node:assert/strict";
import {
  escapeLabelValue,
  exponentialBuckets,
  formatG6,
  formatValue,
  Registry,
} from "../../src/monitoring/metrics.ts";
import { parseExposition, sampleValue } from "./exposition.ts";

Deno.test("Registry.render() writes HELP, TYPE and samples that parse line by line", () => {
  const r = new Registry();
  const c = r.counter("requests_total", "Requests served.", ["model", "code"]);
  const g = r.gauge("temperature", "A gauge.\nWith a second line and a \\ backslash.");
  const h = r.histogram("latency_seconds", "Latency.", ["model"], [0.1, 1, 10]);
  c.inc(["mnist", "OK"]);
  c.inc(["mnist", "OK"], 2);
  c.inc(['we"ird\\name\nx', "NOT_FOUND"]);
  g.set([], -1.5);
  h.observe(["mnist"], 0.05);
  h.observe(["mnist"], 5);
  h.observe(["mnist"], 50);

  const text = r.render();
  const families = parseExposition(text);
  assert.deepEqual([...families.keys()], ["requests_total", "temperature", "latency_seconds"]);
  assert.equal(families.get("requests_total")!.type, "counter");
  assert.equal(families.get("temperature")!.type, "gauge");
  assert.equal(
    families.get("temperature")!.help,
    "A gauge.\nWith a second line and a \\ backslash.",
  );
  assert.equal(families.get("latency_seconds")!.type, "histogram");
  assert.equal(sampleValue(families, "requests_total", { model: "mnist", code: "OK" }), 3);
  // The escaped label value round-trips.
  assert.equal(
    sampleValue(families, "requests_total", { model: 'we"ird\\name\nx', code: "NOT_FOUND" }),
    1,
  );
  assert.equal(sampleValue(families, "temperature"), -1.5);
  assert.ok(text.includes('requests_total{model="we\\"ird\\\\name\\nx",code="NOT_FOUND"} 1\n'));
  assert.ok(text.includes("\ntemperature -1.5\n"), "a label-less sample has no braces");
});

Deno.test("Counter.inc() moves the counter and rejects decreases", () => {
  const r = new Registry();
  const c = r.counter("c_total", "C.", ["a"]);
  assert.equal(c.value(["x"]), 0);
  c.inc(["x"]);
  c.inc(["x"], 0.5);
  assert.equal(c.value(["x"]), 1.5);
  assert.throws(() => c.inc(["x"], -1), RangeError);
  assert.throws(() => c.inc(["x", "y"]), /2 label values for 1 label names/);
  const before = sampleValue(parseExposition(r.render()), "c_total", { a: "x" });
  c.inc(["x"], 3);
  assert.equal(sampleValue(parseExposition(r.render()), "c_total", { a: "x" }), before! + 3);
});

Deno.test("a label-less metric renders 0 before any observation", () => {
  const r = new Registry();
  r.counter("nothing_total", "Nothing yet.");
  r.histogram("h", "H.", [], [1]);
  const f = parseExposition(r.render());
  assert.equal(sampleValue(f, "nothing_total"), 0);
  assert.equal(sampleValue(f, "h_bucket", { le: "+Inf" }), 0);
  assert.equal(sampleValue(f, "h_count"), 0);
});

Deno.test("Histogram buckets are cumulative, le-inclusive, and end in +Inf = _count", () => {
  const r = new Registry();
  const h = r.histogram("d", "D.", ["m"], [1, 2, 4]);
  for (const v of [0.5, 1, 1.5, 2, 3, 4, 100, NaN]) h.observe(["a"], v);
  h.observe(["b"], 3);
  const f = parseExposition(r.render());
  const bucket = (m: string, le: string) => sampleValue(f, "d_bucket", { m, le });
  // A value equal to a bound lands in that bound's bucket (Prometheus' le is <=).
  assert.equal(bucket("a", "1"), 2);
  assert.equal(bucket("a", "2"), 4);
  assert.equal(bucket("a", "4"), 6);
  assert.equal(bucket("a", "+Inf"), 8);
  assert.equal(sampleValue(f, "d_count", { m: "a" }), 8);
  assert.ok(Number.isNaN(sampleValue(f, "d_sum", { m: "a" })), "NaN makes the sum NaN");
  assert.equal(bucket("b", "2"), 0);
  assert.equal(bucket("b", "4"), 1);
  assert.equal(sampleValue(f, "d_sum", { m: "b" }), 3);
  const series = h.get(["a"])!;
  assert.deepEqual([...series.counts], [2, 2, 2, 2]);
});

Deno.test("Registry rejects bad and duplicate definitions", () => {
  const r = new Registry();
  r.counter("ok_total", "Ok.");
  assert.throws(() => r.counter("ok_total", "Again."), /already defined/);
  assert.throws(() => r.counter("1bad", "Bad."), /bad name/);
  assert.throws(() => r.counter("bad-name", "Bad."), /bad name/);
  assert.throws(() => r.gauge("g", "G.", ["__reserved"]), /bad label name/);
  assert.throws(() => r.gauge("g2", "G.", ["a", "a"]), /repeated label name/);
  assert.throws(() => r.histogram("h", "H.", ["le"], [1]), /"le" is reserved/);
  assert.throws(() => r.histogram("h2", "H.", [], [2, 1]), /ascending/);
  assert.throws(() => r.histogram("h3", "H.", [], [1, Infinity]), /finite/);
  // Colons are allowed in metric names (TF Serving's names start with one).
  r.counter(":tensorflow:serving:request_count", "Upstream.", ["model_name", "status"]);
});

Deno.test("a metric past its label-set cap drops new series and says so", () => {
  const dropped: string[] = [];
  const r = new Registry({ onDrop: (m) => dropped.push(m.name) });
  const c = r.counter("capped_total", "Capped.", ["k"], { maxSeries: 2 });
  c.inc(["a"]);
  c.inc(["b"]);
  c.inc(["c"]);
  c.inc(["a"]);
  assert.equal(c.value(["a"]), 2);
  assert.equal(c.value(["c"]), 0);
  assert.equal(c.dropped, 1);
  assert.deepEqual(dropped, ["capped_total"]);
  parseExposition(r.render());
});

Deno.test("Registry.onCollect() runs before each render", () => {
  const r = new Registry();
  const g = r.gauge("now", "Collected.");
  let n = 0;
  r.onCollect(() => g.set([], ++n));
  assert.equal(sampleValue(parseExposition(r.render()), "now"), 1);
  assert.equal(sampleValue(parseExposition(r.render()), "now"), 2);
});

Deno.test("formatG6() formats bounds as %g with six digits, like absl::StrCat(double)", () => {
  assert.equal(formatG6(10), "10");
  assert.equal(formatG6(18), "18");
  assert.equal(formatG6(32.400000000000006), "32.4");
  assert.equal(formatG6(104.97600000000001), "104.976");
  assert.equal(formatG6(0.00025), "0.00025");
  assert.equal(formatG6(0.00001), "1e-05");
  assert.equal(formatG6(999999.7), "1e+06");
  assert.equal(formatG6(123456), "123456");
  assert.equal(formatG6(1464490000), "1.46449e+09");
  assert.equal(formatG6(-2.5), "-2.5");
  assert.equal(formatG6(0), "0");
});

Deno.test("exponentialBuckets() matches TF's Buckets::Exponential(10, 1.8, 33)", () => {
  const b = exponentialBuckets(10, 1.8, 33);
  assert.equal(b.length, 33);
  assert.equal(b[0], 10);
  assert.deepEqual(b.slice(0, 5).map(formatG6), ["10", "18", "32.4", "58.32", "104.976"]);
  // ~20 minutes in microseconds, as upstream's comment says.
  assert.ok(b[32] > 1e9 && b[32] < 2e9);
});

Deno.test("formatValue() and escapeLabelValue() follow the format", () => {
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(3), "3");
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  assert.equal(escapeLabelValue("plain"), "plain");
});

Deno.test("the exposition parser rejects malformed lines", () => {
  const bad = [
    'x{a="1"} 1', // no trailing newline
    "x{a=1} 1\n",
    'x{a="1" 1\n',
    "x 1 2 3\n",
    "x one\n",
    "# TYPE x counter\n# TYPE x counter\n",
    "# TYPE x bogus\n",
    "x 1\ny 1\nx 2\n",
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    'x{a="\\q"} 1\n',
  ];
  for (const text of bad) assert.throws(() => parseExposition(text), Error, text);
});

// How fast recording is belongs to the bench (`deno task bench`), not to a timed assertion here.
Deno.test("a million observations are all counted, in the right buckets", () => {
  const r = new Registry();
  const c = r.counter("fast_total", "Fast.", ["model", "status"]);
  const h = r.histogram("fast_us", "Fast.", ["model", "api"], exponentialBuckets(10, 1.8, 33));
  for (let i = 0; i < 1_000_000; i++) {
    c.inc(["mnist", "OK"]);
    h.observe(["mnist", "Predict"], i % 5000);
  }
  assert.equal(c.value(["mnist", "OK"]), 1_000_000);
  const text = r.render();
  assert.match(text, /fast_us_count\{model="mnist",api="Predict"\} 1000000\n/);
  // 0..4999 repeated 200 times: the sum is 200 × 4999 × 5000 / 2.
  assert.match(text, /fast_us_sum\{model="mnist",api="Predict"\} 2499500000\n/);
});
