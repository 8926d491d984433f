/**
 * The web page's stylesheet: system fonts, light and dark schemes, visible focus, no images.
 *
 * @module
 */

/** The stylesheet, served at `ui/style.css`. */
export const STYLE_CSS = `:root {
  color-scheme: light dark;
  --bg: #f6f8fa; --fg: #1f2328; --muted: #59636e; --card: #ffffff; --line: #d1d9e0;
  --accent: #0969da; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --idle: #6e7781;
  --bar: #0969da; --bar-top: #1a7f37; --on-accent: #ffffff;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --card: #151b23; --line: #3d444d;
    --accent: #4493f8; --ok: #3fb950; --warn: #d29922; --bad: #f85149; --idle: #9198a1;
    --bar: #4493f8; --bar-top: #3fb950; --on-accent: #0d1117;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; }
.skip:focus { left: 8px; top: 8px; background: var(--card); padding: 4px 8px; z-index: 1; }
.sr-only {
  position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap;
}
.muted { color: var(--muted); }
.masthead {
  display: flex; flex-wrap: wrap; align-items: center; gap: 8px 20px;
  padding: 14px 24px; border-bottom: 1px solid var(--line); background: var(--card);
}
.masthead h1 { font-size: 20px; margin: 0; }
.status { margin: 0; display: flex; gap: 10px; align-items: center; }
.links { display: flex; gap: 16px; list-style: none; margin: 0 0 0 auto; padding: 0; }
main {
  max-width: 1040px; margin: 0 auto; padding: 20px 24px; display: grid; gap: 20px;
  grid-template-columns: minmax(0, 1fr); /* wide tables scroll inside their card */
}
@media (max-width: 480px) { main { padding: 12px; } .card { padding: 12px; } }
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
}
.card h2 { font-size: 17px; margin: 0 0 12px; }
footer { text-align: center; padding: 8px 0 24px; font-size: 13px; }
.pill {
  display: inline-block; padding: 1px 10px; border-radius: 999px; font-size: 13px;
  font-weight: 600; border: 1px solid currentColor;
}
.pill-ok { color: var(--ok); }
.pill-bad { color: var(--bad); }
.pill-wait { color: var(--warn); }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: 13px; color: var(--muted); font-weight: 600; }
tbody th { font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.path {
  display: block; font-size: 12px; font-weight: 400; color: var(--muted); word-break: break-all;
}
.versions { display: flex; flex-wrap: wrap; gap: 6px; list-style: none; margin: 0; padding: 0; }
.badge {
  display: inline-flex; gap: 6px; align-items: center; padding: 1px 8px; border-radius: 6px;
  font-size: 12px; border: 1px solid var(--line); white-space: nowrap;
}
.badge::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--idle); }
.st-AVAILABLE::before { background: var(--ok); }
.st-LOADING::before, .st-START::before { background: var(--warn); }
.st-UNLOADING::before { background: var(--idle); }
.st-END.has-error::before { background: var(--bad); }
.vererr { display: block; font-size: 12px; color: var(--bad); margin-top: 4px; }
.row { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; margin: 8px 0; }
select, button {
  font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--card); color: var(--fg); cursor: pointer;
}
button.primary { background: var(--accent); border-color: var(--accent); color: var(--on-accent); }
button:disabled { opacity: .55; cursor: default; }
.check { display: inline-flex; gap: 6px; align-items: center; }
.pad-row { display: flex; flex-wrap: wrap; gap: 24px; }
.pad canvas {
  display: block; width: 280px; height: 280px; max-width: 100%; background: #000;
  border-radius: 8px; touch-action: none; cursor: crosshair; border: 1px solid var(--line);
}
.result { flex: 1 1 300px; min-width: 260px; }
.preview-row { display: flex; gap: 20px; align-items: center; }
figure { margin: 0; text-align: center; }
figcaption { font-size: 12px; }
#preview {
  width: 84px; height: 84px; image-rendering: pixelated; background: #000; border-radius: 4px;
  border: 1px solid var(--line);
}
.digit { display: flex; flex-direction: column; margin: 0; }
.digit output { font-size: 56px; font-weight: 700; line-height: 1.05; }
.bars { list-style: none; margin: 12px 0 0; padding: 0; display: grid; gap: 4px; }
.bars li { display: grid; grid-template-columns: 1.5em 1fr 4.2em; gap: 8px; align-items: center; }
.bars .lab { font-weight: 600; text-align: right; font-variant-numeric: tabular-nums; }
.bars .track { display: block; height: 16px; background: var(--bg); border-radius: 3px; overflow: hidden; }
.bars .fill { display: block; height: 100%; width: 0; background: var(--bar); transition: width .2s ease; }
.bars li.best .fill { background: var(--bar-top); }
.bars li.best .lab, .bars li.best .val { color: var(--bar-top); font-weight: 700; }
.bars .val { font-size: 13px; text-align: right; font-variant-numeric: tabular-nums; }
.error { color: var(--bad); }
@media (prefers-reduced-motion: reduce) { .bars .fill { transition: none; } }
`;
