/**
 * The web page's HTML, served at `/`. Every URL in it is relative, so the page also works
 * behind a reverse proxy that mounts the server under a path prefix.
 *
 * @module
 */

/** The page. Scripts and styles are separate assets so a strict CSP needs no `unsafe-inline`. */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model server</title>
<link rel="icon" href="ui/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="ui/style.css">
<script src="ui/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="masthead">
  <h1>Model server</h1>
  <p class="status">
    <span id="ready" class="pill pill-wait" role="status">Checking…</span>
    <span id="updated" class="muted"></span>
  </p>
  <nav aria-label="Endpoints">
    <ul class="links">
      <li><a id="metrics-link" href="#" hidden>Prometheus metrics</a></li>
      <li><a href="healthz">/healthz</a></li>
      <li><a href="readyz">/readyz</a></li>
    </ul>
  </nav>
</header>
<main id="main">
  <section aria-labelledby="models-title" class="card">
    <h2 id="models-title">Models</h2>
    <noscript><p>This page needs JavaScript to show the models.</p></noscript>
    <div class="table-wrap" tabindex="0" role="region" aria-label="Models table">
      <table id="models">
        <caption class="sr-only">Loaded models, their versions and request rates</caption>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Versions</th>
            <th scope="col" class="num">Requests</th>
            <th scope="col" class="num">Rate</th>
            <th scope="col" class="num">Errors</th>
            <th scope="col" class="num">Mean latency</th>
          </tr>
        </thead>
        <tbody id="models-body">
          <tr><td colspan="6" class="muted">Loading…</td></tr>
        </tbody>
      </table>
    </div>
  </section>

  <section aria-labelledby="digit-title" class="card" id="digit-card">
    <h2 id="digit-title">Draw a digit</h2>
    <p id="digit-none" class="muted">No loaded model takes a [-1, 784] float input (MNIST).</p>
    <div id="digit-ui" hidden>
      <p class="row">
        <label for="digit-model">Model</label>
        <select id="digit-model"></select>
        <span id="digit-sig" class="muted"></span>
      </p>
      <div class="pad-row">
        <div class="pad">
          <canvas id="pad" width="280" height="280" tabindex="0" role="img"
            aria-label="Drawing pad: draw one digit with the mouse, a pen or a finger. Enter predicts, Escape clears."></canvas>
          <p class="row">
            <button type="button" id="predict" class="primary">Predict</button>
            <button type="button" id="clear">Clear</button>
            <label class="check"><input type="checkbox" id="auto" checked> Predict as I draw</label>
          </p>
        </div>
        <div class="result" aria-labelledby="result-title">
          <h3 id="result-title" class="sr-only">Prediction</h3>
          <div class="preview-row">
            <figure>
              <canvas id="preview" width="28" height="28" role="img"
                aria-label="The 28 by 28 input sent to the model"></canvas>
              <figcaption class="muted">Model input (28×28)</figcaption>
            </figure>
            <p class="digit" aria-live="polite" aria-atomic="true">
              <span class="muted">Predicted</span>
              <output id="digit" for="pad">–</output>
              <span id="confidence" class="muted"></span>
            </p>
          </div>
          <ol id="scores" class="bars" aria-label="Score per digit"></ol>
          <p id="digit-error" class="error" role="alert" hidden></p>
        </div>
      </div>
    </div>
  </section>
</main>
<footer class="muted">REST API: <code>/v1/models/{name}</code> · TensorFlow Serving compatible</footer>
</body>
</html>
`;

/** A small favicon: a stylised tensor grid. */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="6" fill="#1f6feb"/>
<g fill="#fff"><rect x="7" y="7" width="7" height="7" rx="1"/><rect x="18" y="7" width="7" height="7" rx="1"/>
<rect x="7" y="18" width="7" height="7" rx="1"/><rect x="18" y="18" width="7" height="7" rx="1" opacity=".5"/></g>
</svg>
`;
