// The /dashboard/ page: polls /dashboard/data with the session cookie and draws the charts on
// <canvas> with the few functions below (no library, no CDN).
"use strict";

(function () {
  const root = document.getElementById("dashboard");
  const url = root.dataset.url;
  const refreshMs = Number(root.dataset.refreshSeconds || 5) * 1000;
  const COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#db2777", "#7c3aed", "#0891b2"];
  const HISTORY = 60; // points kept for the reads-per-second line
  const history = [];
  let previous = null;
  // Read by the browser test: how many times the page has drawn fresh data.
  window.dashboardRenders = 0;

  function $(id) { return document.getElementById(id); }

  function text(id, value) { $(id).textContent = value; }

  function bytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
  }

  function number(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }

  // A canvas sized for the screen's pixel ratio; drawing uses CSS pixels.
  function surface(id) {
    const canvas = $(id);
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    return { ctx, width, height };
  }

  // Axis ticks from 0 to at least `value` (1 when there is nothing) at a round step -- 1, 2, 2.5 or 5
  // times a power of ten, whole numbers for counts -- about four of them, labelled with as many decimals
  // as the step needs: no two labels read the same (the reads/s axis once said 0.2, 0.2, 0.1, 0.1, 0.0).
  function ticks(value, integer) {
    const top = value > 0 ? value : 1;
    const raw = top / 4;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = null;
    for (const m of [1, 2, 2.5, 5, 10]) {
      const candidate = Number((m * power).toPrecision(12));
      if (candidate >= raw && (!integer || Number.isInteger(candidate))) { step = candidate; break; }
    }
    if (step === null) step = integer ? Math.max(1, Math.ceil(raw)) : 10 * power;
    let decimals = 0;
    while (decimals < 10 && Math.abs(Number(step.toFixed(decimals)) - step) > step * 1e-9) decimals += 1;
    const count = Math.max(1, Math.ceil(top / step - 1e-9));
    return { step, count, max: step * count, decimals };
  }

  // The tick labels of each chart, for the browser test.
  window.dashboardAxes = {};

  function axes(ctx, box, id, scale, label) {
    ctx.strokeStyle = "#e5e7eb";
    ctx.fillStyle = "#6b7280";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const labels = [];
    for (let i = 0; i <= scale.count; i += 1) {
      const y = box.bottom - (box.bottom - box.top) * (i / scale.count);
      ctx.beginPath();
      ctx.moveTo(box.left, y);
      ctx.lineTo(box.right, y);
      ctx.stroke();
      labels.push(label(scale.step * i, scale.decimals));
      ctx.fillText(labels[i], box.left - 6, y);
    }
    window.dashboardAxes[id] = labels;
  }

  // Byte axes count in the unit of the largest value: 0, 256, 512 KiB rather than 0, 262144, ...
  function byteScale(top) {
    const power = top >= 1024 ? Math.min(Math.floor(Math.log(top) / Math.log(1024)), 3) : 0;
    const unit = Math.pow(1024, power);
    const t = ticks(top / unit, power === 0);
    const name = ["B", "KiB", "MiB", "GiB"][power];
    return {
      scale: { ...t, step: t.step * unit, max: t.max * unit },
      label: (v, d) => (v / unit).toFixed(d) + " " + name,
    };
  }

  function barChart(id, labels, values, format, options = {}) {
    const { ctx, width, height } = surface(id);
    const box = { left: 64, right: width - 10, top: 16, bottom: height - 28 };
    const top = Math.max(0, options.max || 0, ...values.filter((v) => v !== null && v !== undefined));
    let axis = {
      scale: ticks(top, options.counts),
      label: (v, d) => (options.suffix ? v.toFixed(d) + options.suffix : v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d })),
    };
    if (options.bytes) axis = byteScale(top);
    axes(ctx, box, id, axis.scale, axis.label);
    const max = axis.scale.max;
    const slot = (box.right - box.left) / Math.max(labels.length, 1);
    labels.forEach((label, i) => {
      const value = values[i];
      const x = box.left + slot * i + slot * 0.15;
      const w = slot * 0.7;
      ctx.fillStyle = "#374151";
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      ctx.fillText(label, x + w / 2, box.bottom + 6);
      if (value === null || value === undefined) {
        ctx.fillText("n/a", x + w / 2, box.bottom - 18);
        return;
      }
      const h = (box.bottom - box.top) * Math.min(value / max, 1);
      ctx.fillStyle = COLORS[i % COLORS.length];
      // Never invisible: a zero still shows a hairline, so an empty chart is told apart from a broken one.
      ctx.fillRect(x, box.bottom - Math.max(h, 1), w, Math.max(h, 1));
      ctx.fillStyle = "#111827";
      ctx.textBaseline = "bottom";
      ctx.fillText(format(value), x + w / 2, box.bottom - Math.max(h, 1) - 2);
    });
  }

  function lineChart(id, series) {
    const { ctx, width, height } = surface(id);
    const box = { left: 64, right: width - 10, top: 16, bottom: height - 28 };
    const all = series.flatMap((s) => s.points);
    const scale = ticks(Math.max(0, ...all), false);
    axes(ctx, box, id, scale, (v, d) => v.toFixed(d));
    const max = scale.max;
    // Until the history is full, its points span the whole width.
    const count = Math.max(0, ...series.map((s) => s.points.length));
    const step = (box.right - box.left) / Math.max(count - 1, 1);
    series.forEach((s, k) => {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      s.points.forEach((v, i) => {
        const x = box.right - step * (s.points.length - 1 - i);
        const y = box.bottom - (box.bottom - box.top) * (v / max);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();
      ctx.lineWidth = 1;
      ctx.fillStyle = s.color;
      ctx.fillRect(box.left + 10 + k * 90, box.bottom + 10, 10, 10);
      ctx.fillStyle = "#374151";
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(s.label, box.left + 24 + k * 90, box.bottom + 8);
    });
    if (count < 2) {
      ctx.fillStyle = "#6b7280";
      ctx.textAlign = "center";
      ctx.fillText("collecting… (one point per refresh)", (box.left + box.right) / 2, box.top + 10);
    }
  }

  function renderAnalytics(analytics) {
    if (!analytics) return;
    const d = analytics.data;
    text("users-total", number(d.users.total));
    text("users-new", "+" + number(d.users.newLast24h) + " in 24 h");
    text("accounts-total", number(d.accounts.total));
    text("billing-invoiced", d.billing.totalInvoiced);
    text("billing-paid", d.billing.totalPaid + " paid");
    text("billing-outstanding", d.billing.outstanding);
    text("usage-units", number(d.usage.unitsLast24h));
    text("images-total", number(d.images.total));
    text(
      "analytics-note",
      "Analytics computed at " + new Date(d.computedAt).toLocaleTimeString() +
        (analytics.fromCache ? " (from the cache; up to 5 minutes old)" : " (fresh)"),
    );
    drawAnalyticsCharts(d);
  }

  function drawAnalyticsCharts(d) {
    const metrics = Object.keys(d.usage.byMetric);
    barChart("chart-usage", metrics, metrics.map((m) => d.usage.byMetric[m]), number, { counts: true });
    const statuses = Object.keys(d.images.byStatus);
    barChart("chart-images", statuses, statuses.map((s) => d.images.byStatus[s]), number, { counts: true });
  }

  function renderCache(cache) {
    const apps = Object.keys(cache.apps);
    const stats = apps.map((a) => cache.apps[a]);
    const redis = cache.redis;
    const pill = $("redis-status");
    pill.textContent = "Redis " + redis.status + (redis.version ? " " + redis.version : "");
    pill.className = "pill " + redis.status;
    text(
      "redis-memory",
      redis.status === "up"
        ? bytes(redis.usedMemory) + " used of " + (redis.maxmemory ? bytes(redis.maxmemory) : "no limit") +
            ", " + redis.maxmemoryPolicy
        : "Redis down",
    );

    const now = Date.now();
    const hits = stats.reduce((sum, s) => sum + s.hits, 0);
    const misses = stats.reduce((sum, s) => sum + s.misses, 0);
    if (previous) {
      const seconds = Math.max((now - previous.at) / 1000, 0.001);
      history.push({
        hits: Math.max(hits - previous.hits, 0) / seconds,
        misses: Math.max(misses - previous.misses, 0) / seconds,
      });
      if (history.length > HISTORY) history.shift();
    }
    previous = { at: now, hits, misses };
    drawCacheCharts(cache);

    const body = $("apps").querySelector("tbody");
    body.replaceChildren(...apps.map((app, i) => {
      const s = stats[i];
      const row = document.createElement("tr");
      row.dataset.app = app;
      const cells = [app, number(s.hits), number(s.misses), number(s.errors),
        s.hits + s.misses ? (s.hitRatio * 100).toFixed(1) + "%" : "–", number(s.keys), bytes(s.memoryBytes)];
      cells.forEach((value) => {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.appendChild(cell);
      });
      return row;
    }));
    markOverflow();
  }

  // A table wider than its box scrolls sideways: say so, or its last columns look missing.
  function markOverflow() {
    const wrap = $("apps").closest(".table-wrap");
    wrap.classList.toggle("overflows", wrap.scrollWidth > wrap.clientWidth + 1);
  }
  window.addEventListener("resize", markOverflow);

  // The charts of the cache figures; also redrawn alone when their cards change size.
  function drawCacheCharts(cache) {
    const apps = Object.keys(cache.apps);
    const stats = apps.map((a) => cache.apps[a]);
    barChart("chart-hit-ratio", apps, stats.map((s) => (s.hits + s.misses ? s.hitRatio * 100 : null)),
      (v) => v.toFixed(0) + "%", { max: 100, suffix: "%" });
    barChart("chart-keys", apps, stats.map((s) => s.keys), number, { counts: true });
    barChart("chart-memory", apps, stats.map((s) => s.memoryBytes), bytes, { bytes: true });
    lineChart("chart-reads", [
      { label: "hits/s", color: COLORS[0], points: history.map((p) => p.hits) },
      { label: "misses/s", color: COLORS[3], points: history.map((p) => p.misses) },
    ]);
  }

  let lastData = null;

  function redraw() {
    if (!lastData) return;
    drawCacheCharts(lastData.cache);
    if (lastData.analytics) drawAnalyticsCharts(lastData.analytics.data);
  }

  let pending = false;
  new ResizeObserver(() => {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(() => { pending = false; redraw(); });
  }).observe(document.querySelector(".charts"));

  async function refresh() {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.status === 401 || response.status === 403) {
        window.location.reload(); // the session ended: the page itself redirects to the login
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      renderCache(data.cache);
      renderAnalytics(data.analytics);
      lastData = data;
      $("error").hidden = true;
      text("updated", "updated " + new Date().toLocaleTimeString());
      window.dashboardRenders += 1;
    } catch (error) {
      $("error").textContent = "Could not refresh: " + error.message + " (retrying)";
      $("error").hidden = false;
    } finally {
      window.setTimeout(refresh, refreshMs);
    }
  }

  refresh();
})();
