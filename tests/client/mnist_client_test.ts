import assert from "node:assert/strict";
import { parseClientFlags, pythonFloat, runClient } from "../../src/client/mnist_client.ts";

function capture() {
  let out = "";
  let err = "";
  return {
    io: { out: (t: string) => (out += t), err: (t: string) => (err += t) },
    get out() {
      return out;
    },
    get err() {
      return err;
    },
  };
}

Deno.test("pythonFloat() prints floats as Python's str() does", () => {
  const cases: [number, string][] = [
    [11.129999999999999, "11.129999999999999"],
    [10.4, "10.4"],
    [12, "12.0"],
    [0, "0.0"],
    [0.5, "0.5"],
    [1e-5, "1e-05"],
    [0.0001, "0.0001"],
    [1.5e16, "1.5e+16"],
    [1e15, "1000000000000000.0"],
    [100, "100.0"],
    [-2.25, "-2.25"],
    [(3 / 7) * 100, "42.857142857142854"],
  ];
  for (const [x, want] of cases) assert.equal(pythonFloat(x), want, String(x));
});

Deno.test("parseClientFlags() takes mnist_client.py's flags and defaults", () => {
  assert.deepEqual(parseClientFlags([]), {
    concurrency: 1,
    numTests: 100,
    server: "",
    workDir: "",
  });
  assert.deepEqual(
    parseClientFlags(["--", "--num_tests=1000", "--server=127.0.0.1:8500", "--concurrency=32"]),
    { concurrency: 32, numTests: 1000, server: "127.0.0.1:8500", workDir: "" },
  );
  assert.throws(() => parseClientFlags(["--num_tests=many"]), /--num_tests/);
  assert.throws(() => parseClientFlags(["--bogus=1"]), /Unknown flag --bogus/);
  assert.throws(() => parseClientFlags(["stray"]), /Unknown argument "stray"/);
});

Deno.test("runClient() refuses bad flags and reports what is wrong", async (t) => {
  await t.step("more than 10k tests", async () => {
    const c = capture();
    assert.equal(await runClient(["--num_tests=10001", "--server=x:1"], c.io), 2);
    assert.match(c.err, /num_tests should not be greater than 10k/);
  });
  await t.step("no server", async () => {
    const c = capture();
    assert.equal(await runClient(["--num_tests=1"], c.io), 2);
    assert.match(c.err, /please specify server host:port/);
  });
  await t.step("unreadable MNIST files", async () => {
    const c = capture();
    const dir = await Deno.makeTempDir();
    assert.equal(
      await runClient(["--num_tests=1", "--server=127.0.0.1:1", `--work_dir=${dir}`], c.io),
      1,
    );
    assert.match(c.err, /Cannot read the MNIST test set: .*t10k-images-idx3-ubyte/);
  });
  await t.step("no server listening", async () => {
    const c = capture();
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    assert.equal(await runClient(["--num_tests=3", `--server=127.0.0.1:${port}`], c.io), 1);
    assert.match(c.err, new RegExp(`Cannot reach the PredictionService at 127.0.0.1:${port}`));
    assert.doesNotMatch(c.err, /\n\s+at /); // no stack trace
  });
});
