// Draws the inspector's plots. Each <canvas data-chart="…"> carries its chart as JSON data (built
// and escaped by the server); this file only reads it. Chart.js is served by the inspector too.
const colours = ["#2f6fde", "#e49b0f", "#c8384a", "#3a9d5d", "#7a5cc4"];

function draw(canvas) {
  const spec = JSON.parse(canvas.dataset.chart);
  const chart = new globalThis.Chart(canvas, {
    type: "bar",
    data: {
      labels: spec.labels,
      datasets: spec.datasets.map((dataset, i) => ({ ...dataset, backgroundColor: colours[i % colours.length] })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { title: { display: true, text: spec.title }, legend: { display: spec.datasets.length > 1 } },
      scales: {
        x: { stacked: spec.stacked === true, title: { display: true, text: spec.xTitle } },
        y: { stacked: spec.stacked === true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: spec.yTitle } },
      },
    },
  });
  canvas.dataset.drawn = String(chart.data.datasets.reduce((sum, dataset) => sum + dataset.data.reduce((a, b) => a + b, 0), 0));
}

for (const canvas of document.querySelectorAll("canvas[data-chart]")) draw(canvas);
document.documentElement.dataset.chartsReady = "true";
