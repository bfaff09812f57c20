// How numbers, times and durations read on the page. E.164 stays on the
// wire; only what is shown is grouped, and with no-break spaces so a
// narrow widget never splits a number mid-digits.

const NBSP = "\u00a0";

// "+15555550123" -> "+1 555 555 0123" (NANP), other E.164 numbers in
// groups of three or four after the country code's first digits. Anything
// that is not E.164 is shown as it came.
export function readableNumber(number) {
  if (typeof number !== "string" || !/^\+\d{7,15}$/.test(number)) return number;
  const digits = number.slice(1);
  if (digits.startsWith("1") && digits.length === 11) {
    return ["+1", digits.slice(1, 4), digits.slice(4, 7), digits.slice(7)].join(NBSP);
  }
  if (digits.startsWith("55") && (digits.length === 12 || digits.length === 13)) {
    // Brazil: +55 DD NNNNN-NNNN
    const rest = digits.slice(4);
    return ["+55", digits.slice(2, 4), `${rest.slice(0, rest.length - 4)}-${rest.slice(-4)}`].join(NBSP);
  }
  const country = digits.slice(0, 2);
  const rest = digits.slice(2);
  const groups = [];
  for (let i = 0; i < rest.length; i += 3) groups.push(rest.slice(i, i + 3));
  // A lone last digit joins the group before it.
  if (groups.length > 1 && groups[groups.length - 1].length === 1) {
    const last = groups.pop();
    groups[groups.length - 1] += last;
  }
  return [`+${country}`, ...groups].join(NBSP);
}

export function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export function timeOfDay(ms, lang) {
  if (!ms) return "";
  return new Date(ms).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
}
