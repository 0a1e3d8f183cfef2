//! Official scores: weighted total 0–100 = Σ weightᵢ × (scoreᵢ − 1) / 4; a
//! criterion without a score (N/A) drops its weight and the total is rescaled to the remaining
//! weights; a case's total is the mean of its evaluators' exact totals, shown with one decimal
//! rounded half up (58.75 → 58.8). Arithmetic is exact (fractions of integers), so no total is
//! ever rounded twice and the same inputs always print the same digits.

use std::fmt;

/// A non-negative fraction, kept reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exact {
    num: u128,
    den: u128,
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl Exact {
    pub fn new(num: u128, den: u128) -> Self {
        let den = den.max(1);
        let g = gcd(num, den);
        Self {
            num: num / g,
            den: den / g,
        }
    }

    pub fn zero() -> Self {
        Self::new(0, 1)
    }

    pub fn plus(self, o: Self) -> Self {
        Self::new(self.num * o.den + o.num * self.den, self.den * o.den)
    }

    pub fn divided_by(self, n: u128) -> Self {
        Self::new(self.num, self.den * n.max(1))
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Rounded half up to `decimals` places, as text (`58.8`, `75.0`).
    pub fn rounded(self, decimals: u32) -> String {
        let scale = 10u128.pow(decimals);
        // floor(x · scale + 1/2) = floor((2 · num · scale + den) / (2 · den))
        let n = (2 * self.num * scale + self.den) / (2 * self.den);
        if decimals == 0 {
            return n.to_string();
        }
        format!(
            "{}.{:0width$}",
            n / scale,
            n % scale,
            width = decimals as usize
        )
    }
}

impl fmt::Display for Exact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rounded(1))
    }
}

/// One criterion of a form: its weight and the score given (None = N/A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rated {
    pub weight: u32,
    pub score: Option<u8>,
}

/// The weighted total of one evaluation, and whether it was rescaled for N/A criteria.
/// `None` when no criterion has a score. Scores outside 1..=5 are clamped into it.
pub fn weighted_total(items: &[Rated]) -> Option<(Exact, bool)> {
    let all: u128 = items.iter().map(|r| u128::from(r.weight)).sum();
    let scored: Vec<(u128, u128)> = items
        .iter()
        .filter_map(|r| {
            r.score
                .map(|s| (u128::from(r.weight), u128::from(s.clamp(1, 5)) - 1))
        })
        .collect();
    let scored_weight: u128 = scored.iter().map(|(w, _)| w).sum();
    if scored_weight == 0 {
        return None;
    }
    // Σ w (s − 1) / 4, then × all / scored (rescaling; 1 when nothing is N/A).
    let sum: u128 = scored.iter().map(|(w, s)| w * s).sum();
    Some((
        Exact::new(sum * all, 4 * scored_weight),
        scored_weight != all,
    ))
}

/// The mean of exact totals.
pub fn mean(totals: &[Exact]) -> Option<Exact> {
    if totals.is_empty() {
        return None;
    }
    Some(
        totals
            .iter()
            .fold(Exact::zero(), |a, t| a.plus(*t))
            .divided_by(totals.len() as u128),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: [u32; 6] = [15, 20, 30, 10, 15, 10];

    fn form(scores: [Option<u8>; 6]) -> Vec<Rated> {
        W.iter()
            .zip(scores)
            .map(|(w, s)| Rated {
                weight: *w,
                score: s,
            })
            .collect()
    }

    #[test]
    fn totals_means_and_half_up_rounding() {
        let t = |s: [u8; 6]| weighted_total(&form(s.map(Some))).expect("total").0;
        assert_eq!(t([1; 6]).rounded(2), "0.00");
        assert_eq!(t([5; 6]).rounded(1), "100.0");
        // 15·3 + 20·3 + 30·3 + 10·2 + 15·2 + 10·3 = 275 → 68.75
        assert_eq!(t([4, 4, 4, 3, 3, 4]).rounded(2), "68.75");
        let a = Exact::new(5875, 100); // 58.75
        assert_eq!(a.rounded(1), "58.8");
        assert_eq!(Exact::new(76875, 1000).rounded(1), "76.9");
        assert_eq!(Exact::new(75, 1).to_string(), "75.0");
        // The mean of exact totals, never of rounded ones: (61.25 + 56.25) / 2 = 58.75.
        let m = mean(&[Exact::new(6125, 100), Exact::new(5625, 100)]).expect("mean");
        assert_eq!(m.rounded(1), "58.8");
        assert!(mean(&[]).is_none());
    }

    #[test]
    fn a_criterion_without_a_score_drops_its_weight() {
        // Efficiency (10) N/A: Σ over the rest = 15·3 + 20·3 + 30·3 + 15·2 + 10·3 = 255 of
        // 4·90, rescaled to 100: 255/360·100 = 70.833…
        let (t, rescaled) =
            weighted_total(&form([Some(4), Some(4), Some(4), None, Some(3), Some(4)]))
                .expect("total");
        assert!(rescaled);
        assert_eq!(t.rounded(3), "70.833");
        assert!(weighted_total(&form([None; 6])).is_none());
    }
}
