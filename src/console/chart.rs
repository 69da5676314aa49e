//! Charts drawn as SVG on the server from typed series: stacked bars and lines, each with a
//! title, axis labels, a `<title>` tooltip on every mark, and the same numbers as a table.

use std::fmt::Write;

/// One chart's data: a value per category (time bucket, status) for each series.
pub struct Chart {
    /// The element id, and the prefix of the ids inside.
    pub id: String,
    pub title: String,
    /// What the vertical axis counts, e.g. "leads" or "calls/s".
    pub unit: String,
    pub labels: Vec<String>,
    pub series: Vec<Series>,
    /// A horizontal line drawn across, such as the destination's budget.
    pub limit: Option<Limit>,
    /// Vertical tick labels for a scale of classes (0, 1, 2 … as drawn): the intake→CRM times.
    pub class_ticks: Option<Vec<String>>,
}

pub struct Series {
    pub name: String,
    /// The CSS class that colours it (`c0` … `c7`, or an outcome's own).
    pub class: String,
    pub cells: Vec<Cell>,
}

/// A value as drawn, and as the table and tooltip say it; `None` draws nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub value: Option<f64>,
    pub text: String,
}

impl Cell {
    pub fn count(count: i64) -> Self {
        Self { value: Some(count as f64), text: count.to_string() }
    }

    pub fn empty() -> Self {
        Self { value: None, text: "—".to_owned() }
    }
}

pub struct Limit {
    pub label: String,
    pub value: f64,
}

/// The drawing's own units; it scales to the width it is given, about this wide on a desktop.
const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 230.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 28.0;
/// At most this many category labels under the axis; the table names every one.
const MOST_LABELS: usize = 5;

/// A row of the table under a chart: the category, then each series' name and text.
pub struct TableRow {
    pub label: String,
    pub cells: Vec<(String, String)>,
}

impl Chart {
    /// The numbers as the table under the chart shows them, a row per category.
    pub fn rows(&self) -> Vec<TableRow> {
        let text =
            |series: &Series, index: usize| series.cells.get(index).map(|cell| cell.text.clone()).unwrap_or_default();
        self.labels
            .iter()
            .enumerate()
            .map(|(index, label)| TableRow {
                label: label.clone(),
                cells: self.series.iter().map(|series| (series.name.clone(), text(series, index))).collect(),
            })
            .collect()
    }

    /// Bars of each category, the series stacked on one another.
    pub fn stacked_bars(&self) -> String {
        let totals: Vec<f64> = (0..self.labels.len())
            .map(|index| self.series.iter().filter_map(|series| series.cells.get(index)?.value).sum())
            .collect();
        let top = self.top(totals.iter().copied().fold(0.0, f64::max));
        let mut svg = self.open(top);
        let step = self.step();
        let width = (step * 0.7).max(1.0);
        for (index, label) in self.labels.iter().enumerate() {
            let mut base = 0.0;
            let x = LEFT + step * index as f64 + (step - width) / 2.0;
            for series in &self.series {
                let Some(cell) = series.cells.get(index) else { continue };
                let Some(value) = cell.value.filter(|value| *value > 0.0) else { continue };
                let (y0, y1) = (self.y(base, top), self.y(base + value, top));
                let _ = write!(
                    svg,
                    r#"<rect class="{}" x="{x:.1}" y="{y1:.1}" width="{width:.1}" height="{:.1}"><title>{} · {}: {}</title></rect>"#,
                    escape(&series.class),
                    (y0 - y1).max(0.5),
                    escape(label),
                    escape(&series.name),
                    escape(&cell.text),
                );
                base += value;
            }
        }
        self.close(svg, top)
    }

    /// A line per series through its categories; gaps where a cell is empty.
    pub fn lines(&self) -> String {
        let highest = self.series.iter().flat_map(|series| series.cells.iter().filter_map(|cell| cell.value));
        let top = self.top(highest.fold(0.0, f64::max));
        let mut svg = self.open(top);
        let step = self.step();
        for series in &self.series {
            let mut path = String::new();
            let mut pen_down = false;
            for (index, cell) in series.cells.iter().enumerate() {
                let Some(value) = cell.value else {
                    pen_down = false;
                    continue;
                };
                let (x, y) = (LEFT + step * (index as f64 + 0.5), self.y(value, top));
                let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                pen_down = true;
                let label = self.labels.get(index).map_or("", String::as_str);
                let _ = write!(
                    svg,
                    r#"<circle class="{}" cx="{x:.1}" cy="{y:.1}" r="3"><title>{} · {}: {}</title></circle>"#,
                    escape(&series.class),
                    escape(label),
                    escape(&series.name),
                    escape(&cell.text),
                );
            }
            if !path.is_empty() {
                let _ = write!(svg, r#"<path class="line {}" d="{}"/>"#, escape(&series.class), path.trim_end());
            }
        }
        self.close(svg, top)
    }

    fn step(&self) -> f64 {
        (WIDTH - LEFT - RIGHT) / self.labels.len().max(1) as f64
    }

    /// The value at the top of the axis: the highest drawn (or the limit), rounded up to a
    /// number that divides into four readable ticks.
    fn top(&self, highest: f64) -> f64 {
        if let Some(ticks) = &self.class_ticks {
            return ticks.len().saturating_sub(1).max(1) as f64;
        }
        // Four ticks of at least one: counts are whole numbers.
        let highest = highest.max(self.limit.as_ref().map_or(0.0, |limit| limit.value)).max(4.0);
        let rough = highest / 4.0;
        let magnitude = 10f64.powf(rough.log10().floor());
        let nice = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|factor| factor * magnitude).find(|tick| *tick >= rough);
        nice.unwrap_or(rough) * 4.0
    }

    fn y(&self, value: f64, top: f64) -> f64 {
        TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - (value / top).clamp(0.0, 1.0))
    }

    fn open(&self, top: f64) -> String {
        let id = escape(&self.id);
        let mut svg = format!(
            r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title"><title id="{id}-title">{} ({})</title>"#,
            escape(&self.title),
            escape(&self.unit),
        );
        let ticks: Vec<(f64, String)> = match &self.class_ticks {
            Some(names) => names.iter().enumerate().map(|(class, name)| (class as f64, name.clone())).collect(),
            None => (0..=4).map(|tick| top * f64::from(tick) / 4.0).map(|value| (value, number(value))).collect(),
        };
        for (value, name) in ticks {
            let y = self.y(value, top);
            let _ = write!(
                svg,
                r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                escape(&name),
            );
        }
        let every = self.labels.len().div_ceil(MOST_LABELS).max(1);
        let step = self.step();
        for (index, label) in self.labels.iter().enumerate().filter(|(index, _)| index % every == 0) {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                LEFT + step * (index as f64 + 0.5),
                HEIGHT - BOTTOM + 18.0,
                escape(label),
            );
        }
        svg
    }

    fn close(&self, mut svg: String, top: f64) -> String {
        if let Some(limit) = &self.limit {
            let y = self.y(limit.value, top);
            // Above the line, unless that leaves the drawing: then just below it.
            let label_y = if y - 5.0 < TOP { y + 15.0 } else { y - 5.0 };
            let _ = write!(
                svg,
                r#"<line class="limit" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"><title>{}: {}</title></line><text class="limit-label" x="{:.1}" y="{:.1}" text-anchor="end">{}: {}</text>"#,
                WIDTH - RIGHT,
                escape(&limit.label),
                number(limit.value),
                WIDTH - RIGHT,
                label_y,
                escape(&limit.label),
                number(limit.value),
            );
        }
        let _ = write!(svg, r#"<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}"/>"#, HEIGHT - BOTTOM);
        svg.push_str("</svg>");
        svg
    }
}

/// A tick's number: whole where it is whole, else to one decimal.
fn number(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 { format!("{value:.0}") } else { format!("{value:.1}") }
}

/// Text placed in the SVG is escaped here: the charts are built as strings, outside the
/// template engine's escaping.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>) -> Chart {
        Chart {
            id: "leads".into(),
            title: "Leads <per hour>".into(),
            unit: "leads".into(),
            labels: vec!["10:00".into(), "11:00".into()],
            series,
            limit: None,
            class_ticks: None,
        }
    }

    fn series(name: &str, values: &[i64]) -> Series {
        Series { name: name.into(), class: "c0".into(), cells: values.iter().copied().map(Cell::count).collect() }
    }

    #[test]
    fn stacked_bars_draw_one_mark_per_nonzero_value_each_with_its_tooltip() {
        let svg = chart(vec![series("site", &[3, 0]), series("zap", &[2, 1])]).stacked_bars();
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(svg.contains("<title>10:00 · site: 3</title>"));
        assert!(svg.contains("<title>10:00 · zap: 2</title>"));
        assert!(svg.contains("<title>11:00 · zap: 1</title>"));
        assert!(svg.contains("Leads &lt;per hour&gt;"), "text is escaped: {svg}");
    }

    #[test]
    fn the_axis_rounds_up_to_readable_ticks_and_leaves_room_for_the_limit() {
        let mut chart = chart(vec![series("site", &[3, 7])]);
        assert_eq!(chart.top(7.0), 8.0);
        chart.limit = Some(Limit { label: "budget".into(), value: 20.0 });
        assert_eq!(chart.top(7.0), 20.0);
        assert!(chart.lines().contains("budget: 20"));
    }

    #[test]
    fn a_line_breaks_where_a_bucket_has_no_value() {
        let mut chart = chart(Vec::new());
        chart.labels.push("12:00".into());
        chart.series.push(Series {
            name: "p50".into(),
            class: "c0".into(),
            cells: vec![Cell::count(1), Cell::empty(), Cell::count(2)],
        });
        let svg = chart.lines();
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches('M').count(), 2, "two separate strokes: {svg}");
    }
}
