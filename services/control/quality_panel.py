"""The dashboard's label-quality panel: a per-worker table the browser fills from
``GET /v1/quality`` (workers as pseudonyms: the dashboard never reveals ids; docs/quality.md).
Filled client-side so a dashboard render never waits for a week of quality records."""

from __future__ import annotations

SECTION = """<section class="wide" id="quality"><h2>Label quality per worker (last 7 days)</h2>
<div class="scroll"><table id="quality-workers"><tr><th>worker</th><th>gold</th>
<th>precision</th><th>recall</th><th>attr acc</th><th>MOTA</th><th>IDF1</th>
<th>kept by review</th><th>s/task</th></tr></table></div>
<p class="hint">Proportions: value [95% Wilson interval] over n instances; see the docs' Label
quality page before comparing workers on a few gold clips.</p>
<noscript><p class="hint">This table is filled by JavaScript; without it, read
<a href="/v1/quality">/v1/quality</a> (JSON).</p></noscript>
<script src="/static/quality_panel.js" defer></script></section>"""
