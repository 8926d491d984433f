import assert from "node:assert/strict";
import { type Geometry, WindowCursor } from "../../src/kernels/window.ts";

/** Every (pixel, input offset, tap) the cursor lists, in order. */
function cursorTaps(g: Geometry): string[] {
  const out: string[] = [];
  for (const win = new WindowCursor(g); win.next();) {
    for (let fy = win.fy0; fy < win.fy1; fy++) {
      for (let fx = win.fx0; fx < win.fx1; fx++) {
        const iy = win.iy0 + fy * g.dh, ix = win.ix0 + fx * g.dw;
        out.push(`${win.pixel} ${win.xb + (iy * g.inW + ix) * g.inC} ${fy * g.fw + fx}`);
      }
    }
  }
  return out;
}

/** The same by brute force: every tap of every window, skipping those outside the input. */
function bruteTaps(g: Geometry): string[] {
  const out: string[] = [];
  let pixel = 0;
  for (let b = 0; b < g.batch; b++) {
    for (let oy = 0; oy < g.outH; oy++) {
      for (let ox = 0; ox < g.outW; ox++, pixel++) {
        for (let fy = 0; fy < g.fh; fy++) {
          const iy = oy * g.sh - g.padTop + fy * g.dh;
          if (iy < 0 || iy >= g.inH) continue;
          for (let fx = 0; fx < g.fw; fx++) {
            const ix = ox * g.sw - g.padLeft + fx * g.dw;
            if (ix < 0 || ix >= g.inW) continue;
            const xo = ((b * g.inH + iy) * g.inW + ix) * g.inC;
            out.push(`${pixel} ${xo} ${fy * g.fw + fx}`);
          }
        }
      }
    }
  }
  return out;
}

function pixels(g: Geometry): number {
  let n = 0;
  for (const win = new WindowCursor(g); win.next();) n++;
  return n;
}

Deno.test("the window cursor visits exactly the taps inside the input, in order", () => {
  let seed = 7;
  const r = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return Math.floor((seed / 2 ** 32) * n);
  };
  for (let i = 0; i < 500; i++) {
    const g: Geometry = {
      batch: 1 + r(3),
      inH: 1 + r(7),
      inW: 1 + r(7),
      inC: 1 + r(3),
      fh: 1 + r(5),
      fw: 1 + r(5),
      outH: r(6),
      outW: r(6),
      outC: 1,
      sh: 1 + r(3),
      sw: 1 + r(3),
      dh: 1 + r(3),
      dw: 1 + r(3),
      // Paddings larger than the window put whole windows outside the input.
      padTop: r(7),
      padLeft: r(7),
    };
    assert.deepEqual(cursorTaps(g), bruteTaps(g), JSON.stringify(g));
    assert.equal(pixels(g), g.batch * g.outH * g.outW);
  }
});

Deno.test("the window cursor of an empty output visits nothing", () => {
  const g: Geometry = {
    batch: 2,
    inH: 3,
    inW: 3,
    inC: 1,
    fh: 1,
    fw: 1,
    outH: 3,
    outW: 0,
    outC: 1,
    sh: 1,
    sw: 1,
    dh: 1,
    dw: 1,
    padTop: 0,
    padLeft: 0,
  };
  assert.equal(pixels(g), 0);
  assert.equal(pixels({ ...g, outW: 3, batch: 0 }), 0);
});
