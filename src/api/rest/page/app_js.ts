/**
 * The web page's script, plain browser JavaScript kept in a string so the server needs no build
 * step and no file reads. It polls `ui/api/models`, finds models whose signature takes a
 * `[-1, 784]` (or `[1, 784]`) DT_FLOAT input through the REST metadata API, and drives the
 * drawing pad: strokes are rasterised MNIST-style (fitted into a 20×20 box, anti-aliased, centred
 * by mass in 28×28, white on black, values in [0, 1]) and sent to `:predict`.
 *
 * The text must contain no backtick and no dollar-brace (it sits in a template literal).
 *
 * @module
 */

/** The script, served at `ui/app.js`. */
export const APP_JS = String.raw`"use strict";
(() => {
  const POLL_MS = 2000;
  const SIDE = 28; // MNIST images are 28×28
  const BOX = 20; // and the digit is fitted into the central 20×20 box
  const STROKE = 2.4; // stroke width in 28×28 pixels, close to MNIST's
  const SS = 4; // supersampling for anti-aliasing

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // ---- Models table ----------------------------------------------------------------------
  let previous = null; // { t, totals: Map<name, requests> } of the last poll, for rates
  const digitModels = new Map(); // name -> { version, signature (null: not a digit model), input }
  const probing = new Set();

  function fmtMs(ms) {
    if (ms === undefined || ms === null) return "–";
    if (ms < 1) return ms.toFixed(2) + " ms";
    if (ms < 100) return ms.toFixed(1) + " ms";
    return Math.round(ms) + " ms";
  }

  function renderModels(data) {
    const now = performance.now();
    const body = $("models-body");
    body.replaceChildren();
    const totals = new Map();
    if (data.models.length === 0) {
      const tr = el("tr");
      const td = el("td", "muted", "No models are configured.");
      td.colSpan = 6;
      tr.append(td);
      body.append(tr);
    }
    for (const m of data.models) {
      totals.set(m.name, m.requests);
      const tr = el("tr");
      tr.dataset.model = m.name;
      const name = el("th");
      name.scope = "row";
      name.append(el("span", "", m.name));
      if (m.basePath) name.append(el("span", "path", m.basePath));
      const versions = el("td");
      const list = el("ul", "versions");
      list.setAttribute("aria-label", "Versions of " + m.name);
      if (m.versions.length === 0) list.append(el("li", "muted", "no versions found"));
      for (const v of m.versions) {
        const li = el("li");
        const b = el("span", "badge st-" + v.state + (v.error ? " has-error" : ""));
        b.textContent = "v" + v.version + " " + v.state;
        if (v.loadMs !== undefined) b.title = "Load took " + fmtMs(v.loadMs);
        li.append(b);
        if (v.error) li.append(el("span", "vererr", v.error));
        list.append(li);
      }
      versions.append(list);
      let rate = "–";
      if (previous && previous.totals.has(m.name)) {
        const dt = (now - previous.t) / 1000;
        if (dt > 0) rate = ((m.requests - previous.totals.get(m.name)) / dt).toFixed(2) + "/s";
      }
      tr.append(
        name,
        versions,
        el("td", "num", String(m.requests)),
        el("td", "num", rate),
        el("td", "num", String(m.errors)),
        el("td", "num", fmtMs(m.meanMs)),
      );
      body.append(tr);
      const available = m.versions.find((v) => v.state === "AVAILABLE");
      if (available) probeModel(m.name, available.version);
      else if (digitModels.has(m.name)) {
        digitModels.delete(m.name);
        updateDigitModels();
      }
    }
    // Forget drawing targets whose model left the config.
    let removed = false;
    for (const name of [...digitModels.keys()]) {
      if (!totals.has(name)) removed = digitModels.delete(name);
    }
    if (removed) updateDigitModels();
    previous = { t: now, totals };
    setReady(data.ready ? "Ready" : "Not ready", data.ready ? "pill-ok" : "pill-bad");
    $("ready").title = data.ready
      ? "Every configured model has an available version"
      : data.reason || "";
    $("updated").textContent = "Updated " + new Date().toLocaleTimeString();
    const link = $("metrics-link");
    if (data.metricsPath) {
      link.href = data.metricsPath.replace(/^\/+/, "");
      link.hidden = false;
    } else link.hidden = true;
  }

  /** Updates the readiness pill, touching it only on change: it is a live region. */
  function setReady(text, cls) {
    const ready = $("ready");
    if (ready.textContent !== text) ready.textContent = text;
    ready.className = "pill " + cls;
  }

  function poll() {
    fetch("ui/api/models", { cache: "no-store" })
      .then((r) => {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(renderModels)
      .catch((e) => {
        setReady("Unreachable", "pill-bad");
        $("updated").textContent = String(e.message || e);
      })
      .finally(() => setTimeout(poll, POLL_MS));
  }

  // ---- Finding an MNIST-shaped signature --------------------------------------------------
  function dimSizes(shape) {
    if (!shape || shape.unknown_rank || shape.unknownRank || !Array.isArray(shape.dim)) return null;
    // Proto JSON leaves out a default (0) size.
    return shape.dim.map((d) => Number(d.size === undefined ? 0 : d.size));
  }

  /** The signature to use: one input, DT_FLOAT, shape [-1, 784] or [1, 784]. */
  function findDigitSignature(metadata) {
    // Upstream writes proto field names (signature_def); lowerCamelCase is accepted too.
    const pick = (o, snake, camel) => (o && (o[snake] !== undefined ? o[snake] : o[camel])) || {};
    const map = pick((metadata || {}).metadata, "signature_def", "signatureDef");
    const defs = pick(map, "signature_def", "signatureDef");
    const names = Object.keys(defs).sort((a, b) =>
      (a === "serving_default" ? -1 : 0) - (b === "serving_default" ? -1 : 0)
    );
    for (const name of names) {
      const sig = defs[name];
      const method = sig.method_name || sig.methodName || "";
      if (method && method !== "tensorflow/serving/predict") continue;
      const inputs = Object.keys(sig.inputs || {});
      if (inputs.length !== 1) continue;
      const info = sig.inputs[inputs[0]];
      const dims = dimSizes(info.tensor_shape || info.tensorShape);
      if (info.dtype !== "DT_FLOAT" || !dims || dims.length !== 2) continue;
      if ((dims[0] === -1 || dims[0] === 1) && dims[1] === SIDE * SIDE) {
        return { signature: name, input: inputs[0], outputs: Object.keys(sig.outputs || {}) };
      }
    }
    return null;
  }

  function probeModel(name, version) {
    const known = digitModels.get(name);
    if (probing.has(name) || (known && known.version === version)) return;
    probing.add(name);
    fetch("v1/models/" + encodeURIComponent(name) + "/versions/" + version + "/metadata")
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null)
      .then((md) => {
        // Remembered per version, so a model is probed again only when a new version arrives.
        const found = md && findDigitSignature(md);
        digitModels.set(name, Object.assign({ version, signature: null }, found || {}));
        updateDigitModels();
      })
      .finally(() => probing.delete(name));
  }

  // ---- Drawing pad ----------------------------------------------------------------------
  const pad = $("pad");
  const g = pad.getContext("2d");
  let strokes = []; // arrays of [x, y] in pad pixels
  let drawing = false;
  let predictTimer = 0;
  let predictSeq = 0;

  function clearPad() {
    strokes = [];
    g.fillStyle = "#000";
    g.fillRect(0, 0, pad.width, pad.height);
    const p = $("preview").getContext("2d");
    p.fillStyle = "#000";
    p.fillRect(0, 0, SIDE, SIDE);
    $("digit").textContent = "–";
    $("confidence").textContent = "";
    $("scores").replaceChildren();
    $("digit-error").hidden = true;
  }

  function padPoint(e) {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  }

  function strokeStyle(ctx, width) {
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
    ctx.lineWidth = width;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  }

  function drawStroke(ctx, pts, map, width) {
    if (pts.length === 1) {
      const [x, y] = map(pts[0]);
      ctx.beginPath();
      ctx.arc(x, y, width / 2, 0, Math.PI * 2);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    pts.forEach((p, i) => {
      const [x, y] = map(p);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }

  pad.addEventListener("pointerdown", (e) => {
    if (e.button !== undefined && e.button > 0) return;
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    drawing = true;
    clearTimeout(predictTimer);
    const p = padPoint(e);
    strokes.push([p]);
    strokeStyle(g, 18);
    drawStroke(g, [p], (q) => q, 18);
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    e.preventDefault();
    const stroke = strokes[strokes.length - 1];
    const last = stroke[stroke.length - 1];
    const coalesced = (e.getCoalescedEvents && e.getCoalescedEvents()) || [];
    const events = coalesced.length ? coalesced : [e];
    for (const ev of events) stroke.push(padPoint(ev));
    strokeStyle(g, 18);
    drawStroke(g, [last].concat(stroke.slice(stroke.length - events.length)), (q) => q, 18);
  });
  const endStroke = () => {
    if (!drawing) return;
    drawing = false;
    if ($("auto").checked) {
      clearTimeout(predictTimer);
      predictTimer = setTimeout(predict, 250);
    }
  };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("keydown", (e) => {
    if (e.key === "Escape" || e.key === "Delete" || e.key === "Backspace") clearPad();
    if (e.key === "Enter") predict();
  });

  /**
   * MNIST-style preprocessing: the strokes' bounding box is scaled into a 20×20 box with a fixed
   * stroke width, rendered anti-aliased (4× supersampled, then averaged), and the result is
   * shifted so its centre of mass sits at the centre of the 28×28 field.
   */
  function rasterize() {
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const s of strokes) {
      for (const [x, y] of s) {
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
      }
    }
    if (minX === Infinity) return null;
    const size = Math.max(maxX - minX, maxY - minY);
    const scale = size > 0 ? (BOX - STROKE) / size : 1;
    const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
    const big = document.createElement("canvas");
    big.width = big.height = SIDE * SS;
    const b = big.getContext("2d", { willReadFrequently: true });
    b.fillStyle = "#000";
    b.fillRect(0, 0, big.width, big.height);
    strokeStyle(b, STROKE * SS);
    const map = ([x, y]) => [
      ((x - cx) * scale + SIDE / 2) * SS,
      ((y - cy) * scale + SIDE / 2) * SS,
    ];
    for (const s of strokes) drawStroke(b, s, map, STROKE * SS);
    const px = b.getImageData(0, 0, big.width, big.height).data;
    const small = new Float32Array(SIDE * SIDE);
    let mass = 0, mx = 0, my = 0;
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        let sum = 0;
        for (let dy = 0; dy < SS; dy++) {
          const row = ((y * SS + dy) * big.width + x * SS) * 4;
          for (let dx = 0; dx < SS; dx++) sum += px[row + dx * 4];
        }
        const v = sum / (SS * SS * 255);
        small[y * SIDE + x] = v;
        mass += v;
        mx += v * (x + 0.5);
        my += v * (y + 0.5);
      }
    }
    if (mass === 0) return null;
    const sx = Math.round(SIDE / 2 - mx / mass), sy = Math.round(SIDE / 2 - my / mass);
    const out = new Float32Array(SIDE * SIDE);
    for (let y = 0; y < SIDE; y++) {
      const ty = y + sy;
      if (ty < 0 || ty >= SIDE) continue;
      for (let x = 0; x < SIDE; x++) {
        const tx = x + sx;
        if (tx >= 0 && tx < SIDE) out[ty * SIDE + tx] = Math.min(1, small[y * SIDE + x]);
      }
    }
    return out;
  }

  function showPreview(pixels) {
    const p = $("preview").getContext("2d");
    const img = p.createImageData(SIDE, SIDE);
    for (let i = 0; i < pixels.length; i++) {
      const v = Math.round(pixels[i] * 255);
      img.data[i * 4] = img.data[i * 4 + 1] = img.data[i * 4 + 2] = v;
      img.data[i * 4 + 3] = 255;
    }
    p.putImageData(img, 0, 0);
  }

  // ---- Predicting -----------------------------------------------------------------------
  function firstVector(v) {
    while (Array.isArray(v) && Array.isArray(v[0])) v = v[0];
    return Array.isArray(v) && v.length > 0 && typeof v[0] === "number" ? v : null;
  }

  /** The score vector of the first instance, whatever the response format. */
  function pickScores(json) {
    let p = "predictions" in json ? json.predictions : json.outputs;
    if (Array.isArray(p) && p.length && p[0] && typeof p[0] === "object" && !Array.isArray(p[0])) {
      p = p[0]; // row format with named outputs
    }
    if (p && typeof p === "object" && !Array.isArray(p)) {
      const preferred = ["scores", "probabilities", "probs", "predictions", "logits"];
      const key = preferred.find((k) => firstVector(p[k])) ||
        Object.keys(p).find((k) => (firstVector(p[k]) || []).length > 1);
      p = key ? p[key] : null;
    }
    return firstVector(p);
  }

  /** Probabilities for display: the scores as they are when they already are, else softmax. */
  function probabilities(scores) {
    const sum = scores.reduce((a, b) => a + b, 0);
    if (scores.every((v) => v >= 0 && v <= 1) && Math.abs(sum - 1) < 0.02) return scores;
    const max = Math.max.apply(null, scores);
    const e = scores.map((v) => Math.exp(v - max));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / z);
  }

  function showScores(scores) {
    const probs = probabilities(scores);
    let best = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
    const list = $("scores");
    list.replaceChildren();
    probs.forEach((p, i) => {
      const li = el("li", i === best ? "best" : "");
      li.dataset.digit = String(i);
      li.append(el("span", "lab", String(i)));
      const track = el("span", "track");
      track.setAttribute("aria-hidden", "true");
      const fill = el("span", "fill");
      fill.style.width = (p * 100).toFixed(1) + "%";
      track.append(fill);
      li.append(track, el("span", "val", (p * 100).toFixed(1) + "%"));
      li.setAttribute("aria-label", "Digit " + i + ": " + (p * 100).toFixed(1) + " percent");
      list.append(li);
    });
    $("digit").textContent = String(best);
    $("confidence").textContent = (probs[best] * 100).toFixed(1) + "% confident";
  }

  function predict() {
    clearTimeout(predictTimer);
    const name = $("digit-model").value;
    const model = digitModels.get(name);
    const err = $("digit-error");
    if (!model || !model.signature) return;
    const pixels = rasterize();
    if (!pixels) {
      err.textContent = "Draw a digit first.";
      err.hidden = false;
      return;
    }
    err.hidden = true;
    showPreview(pixels);
    const instance = Array.from(pixels, (v) => Math.round(v * 10000) / 10000);
    const seq = ++predictSeq;
    const button = $("predict");
    button.disabled = true;
    fetch("v1/models/" + encodeURIComponent(name) + ":predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ signature_name: model.signature, instances: [instance] }),
    })
      .then((r) => r.json().then((j) => {
        if (!r.ok) throw new Error(j.error || "HTTP " + r.status);
        return j;
      }))
      .then((j) => {
        if (seq !== predictSeq) return;
        const scores = pickScores(j);
        if (!scores) throw new Error("The response has no score vector");
        showScores(scores);
      })
      .catch((e) => {
        if (seq !== predictSeq) return;
        err.textContent = "Prediction failed: " + (e.message || e);
        err.hidden = false;
      })
      .finally(() => (button.disabled = false));
  }

  function updateDigitModels() {
    const select = $("digit-model");
    const current = select.value;
    const names = [...digitModels].filter(([, v]) => v.signature).map(([k]) => k).sort();
    select.replaceChildren(...names.map((n) => {
      const o = el("option", "", n);
      o.value = n;
      return o;
    }));
    if (names.includes(current)) select.value = current;
    $("digit-ui").hidden = names.length === 0;
    $("digit-none").hidden = names.length > 0;
    const m = digitModels.get(select.value);
    $("digit-sig").textContent = m && m.signature
      ? "version " + m.version + ", signature \u201c" + m.signature + "\u201d, input \u201c" +
        m.input + "\u201d"
      : "";
  }

  $("digit-model").addEventListener("change", updateDigitModels);
  $("predict").addEventListener("click", predict);
  $("clear").addEventListener("click", () => {
    clearPad();
    pad.focus();
  });
  clearPad();
  poll();
})();
`;
