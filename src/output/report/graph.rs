//! The entity graph of an incident report, drawn as inline SVG.
//!
//! One column per kind, left to right: devices | domains | external IPs | users, so a line reads
//! as the path of the attack (device -> domain -> IP <- user). At most [`MAX_GRAPH_NODES`] nodes,
//! [`MAX_COLUMN_NODES`] per column, the ones in most events; each column says how many it left
//! out. Within a column nodes are ordered by first mention, then by the mean height of their
//! neighbours already placed, so lines run as straight as possible. The layout depends only on
//! the incident, never on map iteration order or the clock. Labels are escaped and cut at
//! [`MAX_LABEL_CHARS`]; every number written into an attribute is computed here, never copied
//! from the input.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    Entities, GRAPH_KINDS, Kind, MAX_COLUMN_NODES, MAX_GRAPH_NODES, MAX_LABEL_CHARS,
    MAX_TEXT_CHARS, push_label, push_text,
};

const COL_W: f64 = 290.0;
const ROW_H: f64 = 62.0;
const TOP: f64 = 58.0;
const PAD_X: f64 = 20.0;
const NODE_R: f64 = 12.0;

pub(super) struct Layout {
    /// (entity index, x, y) of every drawn node.
    pub(super) placed: Vec<(usize, f64, f64)>,
    /// Drawable entities not drawn.
    pub(super) hidden: usize,
    height: f64,
    /// Drawn / total per column.
    columns: [(usize, usize); 4],
}

impl Layout {
    pub(super) fn new(ents: &Entities) -> Self {
        let mut drawable: Vec<usize> = (0..ents.list.len())
            .filter(|&i| ents.list.get(i).and_then(|e| e.kind.column()).is_some())
            .collect();
        let mut degrees = vec![0usize; ents.list.len()];
        for &(a, b) in ents.edges.keys() {
            for i in [a, b] {
                if let Some(d) = degrees.get_mut(i) {
                    *d += 1;
                }
            }
        }
        let degree = |i: usize| degrees.get(i).copied().unwrap_or(0);
        let key = |i: usize| {
            let e = ents.list.get(i);
            (
                std::cmp::Reverse(e.map_or(0, |e| e.events)),
                e.map_or(usize::MAX, |e| e.first),
            )
        };
        // Most events first; ties broken by how connected a node is, then first mention.
        drawable.sort_by_key(|&i| (key(i).0, std::cmp::Reverse(degree(i)), key(i).1));
        let mut columns = [(0, 0); 4];
        let mut by_col: [Vec<usize>; 4] = Default::default();
        let mut drawn = 0;
        for &i in &drawable {
            let Some(c) = ents.list.get(i).and_then(|e| e.kind.column()) else {
                continue;
            };
            if let (Some(count), Some(col)) = (columns.get_mut(c), by_col.get_mut(c)) {
                count.1 += 1;
                if drawn < MAX_GRAPH_NODES && col.len() < MAX_COLUMN_NODES {
                    col.push(i);
                    drawn += 1;
                }
            }
        }
        let hidden = drawable.len() - drawn;
        let rows = by_col.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let height = TOP + rows as f64 * ROW_H + if hidden > 0 { 34.0 } else { 8.0 };
        let y_of = |n: usize, k: usize| {
            TOP + (rows - n) as f64 * ROW_H / 2.0 + k as f64 * ROW_H + NODE_R + 6.0
        };

        // Each column in first-seen order, then (left to right) by the mean height of its
        // neighbours already placed, so lines run as straight as possible.
        let mut y: BTreeMap<usize, f64> = BTreeMap::new();
        let mut placed = Vec::with_capacity(drawable.len());
        for (c, col) in by_col.iter_mut().enumerate() {
            col.sort_by_key(|&i| ents.list.get(i).map_or(usize::MAX, |e| e.first));
            let mut keyed: Vec<(f64, usize, usize)> = col
                .iter()
                .enumerate()
                .map(|(k, &i)| {
                    let ys: Vec<f64> = ents
                        .edges
                        .keys()
                        .filter_map(|&(a, b)| match (a == i, b == i) {
                            (true, _) => y.get(&b).copied(),
                            (_, true) => y.get(&a).copied(),
                            _ => None,
                        })
                        .collect();
                    let own = y_of(col.len(), k);
                    let bary = if ys.is_empty() {
                        own
                    } else {
                        ys.iter().sum::<f64>() / ys.len() as f64
                    };
                    (bary, k, i)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let n = keyed.len();
            for (k, &(_, _, i)) in keyed.iter().enumerate() {
                let (px, py) = (PAD_X + COL_W * (c as f64 + 0.5), y_of(n, k));
                y.insert(i, py);
                placed.push((i, px, py));
            }
            if let Some(slot) = columns.get_mut(c) {
                slot.0 = n;
            }
        }
        Layout {
            placed,
            hidden,
            height,
            columns,
        }
    }

    pub(super) fn write_svg(&self, ents: &Entities, out: &mut String) {
        let width = PAD_X * 2.0 + COL_W * 4.0;
        let _ = writeln!(
            out,
            "<svg viewBox=\"0 0 {width:.0} {h:.0}\" width=\"{width:.0}\" height=\"{h:.0}\" \
             role=\"img\" aria-label=\"Entity graph\">",
            h = self.height
        );
        for (c, kind) in GRAPH_KINDS.iter().enumerate() {
            let x = PAD_X + COL_W * c as f64;
            let _ = writeln!(
                out,
                "<rect class=\"colbg\" x=\"{:.0}\" y=\"8\" width=\"{:.0}\" height=\"{:.0}\" rx=\"6\"/>",
                x + 6.0,
                COL_W - 12.0,
                self.height - 16.0
            );
            let (shown, total) = self.columns.get(c).copied().unwrap_or_default();
            let count = if shown < total {
                format!("{shown} of {total}")
            } else {
                total.to_string()
            };
            let _ = writeln!(
                out,
                "<text class=\"colh\" x=\"{:.0}\" y=\"32\" text-anchor=\"middle\">{} · {count}</text>",
                x + COL_W / 2.0,
                kind.heading().to_ascii_uppercase()
            );
            if total == 0 {
                let _ = writeln!(
                    out,
                    "<text class=\"more\" x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">none</text>",
                    x + COL_W / 2.0,
                    (TOP + self.height) / 2.0
                );
            } else if shown < total {
                let _ = writeln!(
                    out,
                    "<text class=\"more\" x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">+{} more</text>",
                    x + COL_W / 2.0,
                    self.height - 22.0,
                    total - shown
                );
            }
        }
        let pos: BTreeMap<usize, (f64, f64)> =
            self.placed.iter().map(|&(i, x, y)| (i, (x, y))).collect();
        out.push_str("<g class=\"edges\">\n");
        for (&(a, b), edge) in &ents.edges {
            let (Some(&pa), Some(&pb)) = (pos.get(&a), pos.get(&b)) else {
                continue;
            };
            let ((x1, y1), (x2, y2), (ea, eb)) = if pa.0 <= pb.0 {
                (pa, pb, (a, b))
            } else {
                (pb, pa, (b, a))
            };
            let span = ((x2 - x1) / COL_W).round();
            let d = if span < 0.5 {
                // Same column: a loop out to the left.
                format!(
                    "M{:.1} {y1:.1} C{:.1} {y1:.1} {:.1} {y2:.1} {:.1} {y2:.1}",
                    x1 - NODE_R,
                    x1 - 90.0,
                    x1 - 90.0,
                    x1 - NODE_R
                )
            } else if span < 1.5 {
                let mx = (x1 + x2) / 2.0;
                format!(
                    "M{:.1} {y1:.1} C{mx:.1} {y1:.1} {mx:.1} {y2:.1} {:.1} {y2:.1}",
                    x1 + NODE_R,
                    x2 - NODE_R
                )
            } else {
                // Skips a column: bow upwards over the nodes in between.
                let lift = 26.0 * span;
                format!(
                    "M{:.1} {:.1} C{:.1} {:.1} {:.1} {:.1} {:.1} {:.1}",
                    x1 + NODE_R * 0.7,
                    y1 - NODE_R * 0.7,
                    x1 + COL_W * 0.6,
                    y1 - lift - 30.0,
                    x2 - COL_W * 0.6,
                    y2 - lift - 30.0,
                    x2 - NODE_R * 0.7,
                    y2 - NODE_R * 0.7
                )
            };
            let class = if edge.bound && edge.events == 0 {
                "edge bound"
            } else {
                "edge"
            };
            let stroke = 1.4 + f64::from(edge.events.min(8)) * 0.45;
            let _ = write!(
                out,
                "<path class=\"{class}\" d=\"{d}\" stroke-width=\"{stroke:.2}\"><title>"
            );
            for (n, i) in [ea, eb].into_iter().enumerate() {
                if n > 0 {
                    out.push_str(" — ");
                }
                if let Some(e) = ents.list.get(i) {
                    push_text(out, &e.name, MAX_TEXT_CHARS);
                }
            }
            match (edge.events, edge.bound) {
                (0, _) => out.push_str(": device–user binding"),
                (1, b) => out.push_str(if b { ": 1 event, bound" } else { ": 1 event" }),
                (n, b) => {
                    let _ = write!(out, ": {n} events{}", if b { ", bound" } else { "" });
                }
            }
            out.push_str("</title></path>\n");
        }
        out.push_str("</g>\n<g class=\"nodes\">\n");
        for &(i, x, y) in &self.placed {
            let Some(e) = ents.list.get(i) else { continue };
            out.push_str("<g><title>");
            let _ = write!(out, "{}: ", e.kind.class());
            push_text(out, &e.name, MAX_TEXT_CHARS);
            if let Some(h) = &e.hostname {
                out.push_str(" (");
                push_text(out, h, MAX_TEXT_CHARS);
                out.push(')');
            }
            let _ = write!(out, ", {} events</title>", e.events);
            write_shape(out, e.kind, x, y);
            let _ = write!(
                out,
                "<text class=\"lbl\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">",
                y + NODE_R + 15.0
            );
            push_label(out, &e.name, MAX_LABEL_CHARS);
            let _ = write!(
                out,
                "</text><text class=\"sub\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">",
                y + NODE_R + 29.0
            );
            if let Some(h) = &e.hostname {
                push_label(out, h, MAX_LABEL_CHARS - 12);
                out.push_str(" · ");
            }
            match e.events {
                1 => out.push_str("1 event"),
                n => {
                    let _ = write!(out, "{n} events");
                }
            }
            out.push_str("</text></g>\n");
        }
        out.push_str("</g>\n");
        out.push_str("</svg>\n");
    }
}

fn write_shape(out: &mut String, kind: Kind, x: f64, y: f64) {
    let r = NODE_R;
    let _ = match kind {
        Kind::Device => write!(
            out,
            "<rect class=\"node device\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\"/>",
            x - r * 1.25,
            y - r * 0.9,
            r * 2.5,
            r * 1.8
        ),
        Kind::Domain => write!(
            out,
            "<polygon class=\"node domain\" points=\"{x:.1},{:.1} {:.1},{y:.1} {x:.1},{:.1} {:.1},{y:.1}\"/>",
            y - r * 1.25,
            x + r * 1.25,
            y + r * 1.25,
            x - r * 1.25
        ),
        Kind::Ip => {
            let mut points = String::new();
            for k in 0..6 {
                let a = std::f64::consts::PI / 3.0 * f64::from(k);
                let _ = write!(
                    points,
                    "{}{:.1},{:.1}",
                    if k > 0 { " " } else { "" },
                    x + r * 1.15 * a.cos(),
                    y + r * 1.15 * a.sin()
                );
            }
            write!(out, "<polygon class=\"node ip\" points=\"{points}\"/>")
        }
        Kind::User | Kind::Url => write!(
            out,
            "<circle class=\"node user\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\"/>"
        ),
    };
}
