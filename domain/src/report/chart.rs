//! The report's bar charts (weighted totals, per-criterion means) as data, as an SVG drawing
//! and as the table of their numbers.
//!
//! The SVG is a pure function of the chart: fixed sizes, numbers printed with the labels the
//! report's tables use, no random ids, so the same report gives the same bytes. Every bar is
//! labelled with its number, and the chart carries a `<title>`; the report keeps the score
//! table beside it, so a screen reader and a reader of a text-only format lose nothing.

use super::{esc, txt, Cell};

/// One series of bars (a government, or "weighted total").
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// Per category: the bar's length on the axis and the label printed at its end; `None`
    /// where there is nothing to draw (not scored).
    pub values: Vec<Option<(f64, String)>>,
}

/// A horizontal grouped bar chart: per category (a government, a criterion), one bar per
/// series.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Identifies the chart (`totals:S-LIB`, `criteria:S-LIB`).
    pub id: String,
    pub title: String,
    /// The axis runs from 0 to `max` (100 for weighted totals, 5 for a criterion's score).
    pub max: f64,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    /// The first column's header in [`Chart::as_table`] (항목, 지자체).
    pub category_label: String,
}

const PALETTE: [&str; 6] = [
    "#2F5D8A", "#D9822B", "#4E9A6B", "#8464A8", "#C24D4B", "#5F6B7A",
];
const WIDTH: u32 = 640;
const LABEL_W: u32 = 170;
const PLOT_W: u32 = 390;
const BAR_H: u32 = 14;
const BAR_GAP: u32 = 3;
const GROUP_GAP: u32 = 12;

fn fmt(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Chart {
    /// The chart's numbers as a table: one row per category, one column per series.
    pub fn as_table(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
        let mut head = vec![self.category_label.clone()];
        head.extend(self.series.iter().map(|s| s.name.clone()));
        let rows = self
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut row = vec![txt(c.clone())];
                for s in &self.series {
                    row.push(txt(match s.values.get(i) {
                        Some(Some((_, label))) => label.clone(),
                        _ => "-".to_string(),
                    }));
                }
                row
            })
            .collect();
        (head, rows)
    }

    /// The chart as a standalone SVG drawing.
    pub fn svg(&self) -> String {
        let legend_h = if self.series.len() > 1 { 26 } else { 4 };
        let group_h = u32::try_from(self.series.len()).unwrap_or(1).max(1) * (BAR_H + BAR_GAP);
        let plot_h = u32::try_from(self.categories.len()).unwrap_or(0) * (group_h + GROUP_GAP);
        let height = legend_h + plot_h + 30;
        let x0 = LABEL_W;
        let max = if self.max > 0.0 { self.max } else { 1.0 };
        let scale = |v: f64| f64::from(PLOT_W) * (v.clamp(0.0, max) / max);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"Noto Sans CJK KR, Noto Sans KR, Malgun Gothic, sans-serif\" font-size=\"11\">\
<title>{}</title>\n",
            esc(&self.title)
        );
        // Legend.
        if self.series.len() > 1 {
            let mut x = x0;
            for (i, series) in self.series.iter().enumerate() {
                s.push_str(&format!(
                    "<rect x=\"{x}\" y=\"6\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"15\">{}</text>\n",
                    PALETTE[i % PALETTE.len()],
                    x + 14,
                    esc(&series.name)
                ));
                let w = u32::try_from(series.name.chars().count()).unwrap_or(20) * 11 + 30;
                x += w;
            }
        }
        // Grid and axis: five steps from 0 to max.
        let bottom = legend_h + plot_h;
        for step in 0..=5u32 {
            let v = max * f64::from(step) / 5.0;
            let x = f64::from(x0) + scale(v);
            s.push_str(&format!(
                "<line x1=\"{x:.1}\" y1=\"{legend_h}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"{}\" stroke-width=\"1\"/>\
<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#4A5560\">{}</text>\n",
                if step == 0 { "#4A5560" } else { "#D5DCE3" },
                bottom + 16,
                fmt(v)
            ));
        }
        // Bars.
        for (c, category) in self.categories.iter().enumerate() {
            let top =
                legend_h + u32::try_from(c).unwrap_or(0) * (group_h + GROUP_GAP) + GROUP_GAP / 2;
            s.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\n",
                x0 - 8,
                top + group_h / 2,
                esc(category)
            ));
            for (i, series) in self.series.iter().enumerate() {
                let y = top + u32::try_from(i).unwrap_or(0) * (BAR_H + BAR_GAP);
                match series.values.get(c) {
                    Some(Some((v, label))) => {
                        let w = scale(*v);
                        s.push_str(&format!(
                            "<rect x=\"{x0}\" y=\"{y}\" width=\"{w:.1}\" height=\"{BAR_H}\" fill=\"{}\"/>\
<text x=\"{:.1}\" y=\"{}\" dominant-baseline=\"middle\">{}</text>\n",
                            PALETTE[i % PALETTE.len()],
                            f64::from(x0) + w + 4.0,
                            y + BAR_H / 2,
                            esc(label)
                        ));
                    }
                    _ => s.push_str(&format!(
                        "<text x=\"{}\" y=\"{}\" dominant-baseline=\"middle\" fill=\"#4A5560\">-</text>\n",
                        x0 + 4,
                        y + BAR_H / 2
                    )),
                }
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            id: "totals:S".into(),
            title: "가중 총점 <비교>".into(),
            max: 100.0,
            categories: vec!["한빛구".into(), "누리구".into()],
            series: vec![Series {
                name: "가중 총점".into(),
                values: vec![Some((57.5, "57.5".into())), None],
            }],
            category_label: "지자체".into(),
        }
    }

    #[test]
    fn the_drawing_labels_every_bar_and_escapes_names() {
        let svg = chart().svg();
        assert!(svg.contains(">57.5</text>"), "{svg}");
        assert!(svg.contains("가중 총점 &lt;비교&gt;"));
        assert!(!svg.contains("<비교>"));
        assert_eq!(svg, chart().svg(), "the same chart draws the same bytes");
        // The bar of 57.5 on an axis to 100 is 57.5 % of the plot.
        assert!(
            svg.contains(&format!("width=\"{:.1}\"", 390.0 * 0.575)),
            "{svg}"
        );
    }

    #[test]
    fn the_table_holds_the_numbers() {
        let (head, rows) = chart().as_table();
        assert_eq!(head, vec!["지자체", "가중 총점"]);
        assert_eq!(rows[0][1], txt("57.5"));
        assert_eq!(rows[1][1], txt("-"));
    }
}
