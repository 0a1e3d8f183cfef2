// Anchors in Unicode code points (JavaScript strings count UTF-16 units; an emoji is two of
// them but one code point), text normalised to NFC — the same rules as the server's
// protocol/src/anchor.rs.

export const cpLength = (s) => Array.from(s ?? "").length;
export const cpSlice = (s, a, b) => Array.from(s ?? "").slice(a, b).join("");

/// Where `quote` is in `text`: at `hint` if the text there is the quote, else the occurrence
/// whose surroundings match prefix and suffix best (ties: nearest the hint); null if nowhere.
export function locate(text, quote, hint) {
  const t = Array.from((text ?? "").normalize("NFC"));
  const exact = Array.from((quote?.exact ?? "").normalize("NFC"));
  if (!exact.length) return null;
  const same = (i) => exact.every((c, k) => t[i + k] === c);
  if (hint && hint.end - hint.start === exact.length && hint.start >= 0 && same(hint.start)) {
    return { start: hint.start, end: hint.end };
  }
  const pre = Array.from((quote.prefix ?? "").normalize("NFC"));
  const suf = Array.from((quote.suffix ?? "").normalize("NFC"));
  let best = null;
  for (let i = 0; i + exact.length <= t.length; i++) {
    if (!same(i)) continue;
    let p = 0;
    while (p < pre.length && i - 1 - p >= 0 && pre[pre.length - 1 - p] === t[i - 1 - p]) p++;
    let q = 0;
    const e = i + exact.length;
    while (q < suf.length && e + q < t.length && suf[q] === t[e + q]) q++;
    const score = p + q;
    const dist = hint ? Math.abs(hint.start - i) : 0;
    if (!best || score > best.score || (score === best.score && dist < best.dist)) best = { score, dist, start: i };
  }
  return best ? { start: best.start, end: best.start + exact.length } : null;
}
