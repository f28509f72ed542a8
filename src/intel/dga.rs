//! DGA-likeness of a DNS label: a character trigram model trained on a word list shipped in the
//! repository (`data/words.txt`, from SCOWL via Debian's `wamerican`; `scripts/make-wordlist.sh`
//! rebuilds it), plus Shannon entropy and the digit mix.
//!
//! Human-chosen names (`latovafineart`, `thecalebgroup`, `northwind-sync`) are made of pronounceable
//! English-like trigrams; algorithmically generated ones (`rz8js7sjbef`, `xjw7q2kd9fzq`) are not.
//! The model is a fixed table of 38×38×38 counts (about 220 KB) built once at start-up; scoring
//! a label walks it once and allocates nothing.

/// Labels shorter than this are never called random (too little evidence).
pub const MIN_LEN: usize = 8;

const A: usize = 38; // a-z, 0-9, '-', boundary
const BOUND: usize = 37;

fn idx(b: u8) -> Option<usize> {
    match b {
        b'a'..=b'z' => Some(usize::from(b - b'a')),
        b'0'..=b'9' => Some(26 + usize::from(b - b'0')),
        b'-' | b'_' => Some(36),
        _ => None,
    }
}

/// A trained trigram model.
pub struct Model {
    tri: Vec<u32>,
    bi: Vec<u32>,
}

/// How random a label looks, with the facts behind it.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    /// Mean log2 probability per character transition under the model (higher = more word-like).
    pub mean_logp: f64,
    /// Shannon entropy of the label's characters, bits per character.
    pub entropy: f64,
    /// Whether the label is judged algorithmically generated.
    pub random: bool,
}

impl Model {
    /// The model trained on the shipped word list.
    pub fn shipped() -> Model {
        Model::train(include_str!("../../data/words.txt").lines())
    }

    /// Trains on words (one per item, lower-case ASCII; others skipped).
    pub fn train<'a>(words: impl Iterator<Item = &'a str>) -> Model {
        let mut m = Model {
            tri: vec![0; A * A * A],
            bi: vec![0; A * A],
        };
        for w in words {
            let Some(seq) = Self::seq(w.trim()) else {
                continue;
            };
            for win in seq.windows(3) {
                m.tri[(win[0] * A + win[1]) * A + win[2]] += 1;
                m.bi[win[0] * A + win[1]] += 1;
            }
        }
        m
    }

    /// The label as indices framed by two boundary symbols; `None` for characters outside the
    /// host name alphabet or an empty label. Labels longer than 63 are cut (DNS limit).
    fn seq(label: &str) -> Option<Vec<usize>> {
        if label.is_empty() {
            return None;
        }
        let mut v = Vec::with_capacity(label.len().min(63) + 3);
        v.extend([BOUND, BOUND]);
        for b in label.bytes().take(63) {
            v.push(idx(b)?);
        }
        v.push(BOUND);
        Some(v)
    }

    /// Scores one label (no dots). Punycode (`xn--`) labels are never called random (their
    /// encoding looks random whatever the name); hyphenated labels are judged part by part
    /// (`awsdns-29` is `awsdns` and `29`), random when one part is.
    pub fn judge(&self, label: &str) -> Verdict {
        if label.starts_with("xn--") {
            return Verdict {
                mean_logp: 0.0,
                entropy: entropy(label),
                random: false,
            };
        }
        if label.contains(['-', '_']) {
            let mut worst: Option<Verdict> = None;
            for part in label.split(['-', '_']).filter(|p| !p.is_empty()) {
                let v = self.judge_part(part);
                if v.random {
                    return v;
                }
                if worst.is_none_or(|w| v.mean_logp < w.mean_logp) {
                    worst = Some(v);
                }
            }
            return worst.unwrap_or(Verdict {
                mean_logp: 0.0,
                entropy: 0.0,
                random: false,
            });
        }
        self.judge_part(label)
    }

    fn judge_part(&self, label: &str) -> Verdict {
        let Some(seq) = Self::seq(label) else {
            return Verdict {
                mean_logp: 0.0,
                entropy: 0.0,
                random: false,
            };
        };
        let mut sum = 0.0;
        let mut n = 0.0;
        for win in seq.windows(3) {
            let t = f64::from(self.tri[(win[0] * A + win[1]) * A + win[2]]);
            let b = f64::from(self.bi[win[0] * A + win[1]]);
            // Add-k smoothing so unseen trigrams cost a lot but not infinity.
            sum += ((t + 0.1) / (b + 0.1 * A as f64)).log2();
            n += 1.0;
        }
        let mean_logp = if n > 0.0 { sum / n } else { 0.0 };
        let entropy = entropy(label);
        let len = label.len();
        let digits = label.bytes().filter(u8::is_ascii_digit).count();
        let letters = label.bytes().filter(u8::is_ascii_lowercase).count();
        // Letters and digits interleaved (rz8js7sjbef) rather than a trailing number (web2).
        let mixed = digits >= 2 && letters >= 3 && digit_runs(label) >= 2;
        // Unlikely trigrams alone also describe abbreviations (akamaiedge, tiktokcdn); random
        // strings also use many distinct characters, close to the most their length allows.
        let spread = entropy >= (0.9 * (len as f64).log2()).min(3.0);
        let random =
            len >= MIN_LEN && ((mean_logp < -5.5 && spread) || (mixed && mean_logp < -4.0));
        Verdict {
            mean_logp,
            entropy,
            random,
        }
    }
}

fn digit_runs(label: &str) -> usize {
    let mut runs = 0;
    let mut prev = false;
    for b in label.bytes() {
        let d = b.is_ascii_digit();
        if d && !prev {
            runs += 1;
        }
        prev = d;
    }
    runs
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_not_random() {
        let m = Model::shipped();
        for l in [
            "latovafineart",
            "thecalebgroup",
            "northwind-sync",
            "microsoftonline",
            "facebook",
            "wikipedia",
            "stackoverflow",
            "googleapis",
            "cloudflare",
            "timesheets",
            "acme-timesheets",
            "docsend",
            "zixmail",
            "amazonaws",
            "akamaiedge",
            "office365",
            "windowsupdate",
            "youtube",
            "linkedin",
            "salesforce",
            "akamaiedge",
            "tiktokcdn",
            "googlesyndication",
            "bilibili",
            "awsdns-29",
            "xn--80a0adav",
            "ns-1984",
        ] {
            let v = m.judge(l);
            assert!(!v.random, "{l} judged random: {v:?}");
        }
    }

    #[test]
    fn generated_names_are_random() {
        let m = Model::shipped();
        for l in [
            "rz8js7sjbef",
            "xjw7q2kd9fzq",
            "qpzkvhtrwmxb",
            "kq3n9vz2lp0x",
            "vbxqzjwkcdtf",
            "h7f3k9q2m1zx",
            "zxkqjvwpftgh",
        ] {
            let v = m.judge(l);
            assert!(v.random, "{l} judged ordinary: {v:?}");
        }
    }

    #[test]
    fn short_and_odd_labels_are_safe() {
        let m = Model::shipped();
        assert!(!m.judge("xq7").random);
        assert!(!m.judge("").random);
        assert!(!m.judge("bücher").random);
        assert!(!m.judge(&"z".repeat(300)).random || m.judge(&"z".repeat(300)).mean_logp < 0.0);
        assert!((entropy("abab") - 1.0).abs() < 1e-9);
    }
}
