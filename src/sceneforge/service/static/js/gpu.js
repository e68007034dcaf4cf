// GPU time and cost (issue #19): per scene, what made its current assets; per topic, every job it ran.

function total(perStage) {
  if (!perStage || typeof perStage !== "object") return null;
  const values = Object.values(perStage).filter((v) => typeof v === "number");
  return values.length ? values.reduce((a, b) => a + b, 0) : null;
}

/** "GPU 44.2 s · $0.0312" from {stage: seconds} and {stage: cost}; "" when no job reported any. */
export function gpuText(seconds, cost) {
  const s = total(seconds);
  if (s === null) return "";
  const c = total(cost);
  return `GPU ${s.toFixed(1)} s${c === null ? "" : ` · $${c.toFixed(c < 1 ? 4 : 2)}`}`;
}
