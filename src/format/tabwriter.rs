//! Column alignment with the semantics of Go's `text/tabwriter` for a space
//! pad character and no flags, as podman uses it
//! (`tabwriter.NewWriter(w, minwidth, tabwidth, padding, ' ', 0)`).
//!
//! A cell is text terminated by a tab; the text after a line's last tab is not
//! a cell of any column and is written as is. A column's width is the widest
//! cell (in characters) plus `padding`, at least `minwidth`, computed over a
//! block of consecutive lines that all have a cell in that column: a line with
//! fewer cells ends the block, and the next block is sized on its own.

/// Aligns tab-separated cells of `text`. Lines keep their order and the text
/// keeps its trailing newline (or lack of one).
pub(crate) fn align(text: &str, minwidth: usize, padding: usize) -> String {
    let mut lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // A final line without a newline never terminates an empty last cell, so
    // the cell before its last tab is written unpadded (Go's Flush).
    if let Some(last) = lines.last_mut()
        && last.len() > 1
        && last.last() == Some(&"")
    {
        last.pop();
    }
    // Tab-terminated cells per line: all but the last.
    let ncells = |l: &Vec<&str>| l.len() - 1;
    let ncols = lines.iter().map(ncells).max().unwrap_or(0);
    let mut widths: Vec<Vec<usize>> = lines.iter().map(|l| vec![0; ncells(l)]).collect();
    for col in 0..ncols {
        let mut i = 0;
        while i < lines.len() {
            if ncells(&lines[i]) <= col {
                i += 1;
                continue;
            }
            let start = i;
            let mut width = minwidth;
            while i < lines.len() && ncells(&lines[i]) > col {
                width = width.max(lines[i][col].chars().count() + padding);
                i += 1;
            }
            for w in &mut widths[start..i] {
                w[col] = width;
            }
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    for (n, (line, w)) in lines.iter().zip(&widths).enumerate() {
        if n > 0 {
            out.push('\n');
        }
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(&width) = w.get(j) {
                out.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count())));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_with_minwidth_and_padding() {
        let got = align("CONTAINER ID\tNAMES\tCREATED AT\n", 12, 2);
        assert_eq!(got, "CONTAINER ID  NAMES       CREATED AT\n");
        let got = align("a\tb\tc\nlonger-cell-here\tx\ty\n", 12, 2);
        assert_eq!(
            got,
            "a                 b           c\nlonger-cell-here  x           y\n"
        );
    }

    #[test]
    fn last_cell_is_not_padded_and_empty_cells_are() {
        assert_eq!(align("a\t\tz", 4, 1), "a       z");
        assert_eq!(align("x\t\n", 4, 1), "x   \n");
        assert_eq!(align("x\t", 4, 1), "x");
        assert_eq!(align("ab\tc\nx\t", 1, 1), "ab c\nx");
    }

    #[test]
    fn a_line_without_the_column_ends_the_block() {
        // Go's tabwriter sizes column 0 separately above and below "plain".
        let text = "short\tx\nplain\nvery-long-cell\ty\n";
        assert_eq!(align(text, 1, 1), "short x\nplain\nvery-long-cell y\n");
        // A line with fewer cells ends the block of the later column only.
        let text = "a\tbbbbbbbbbb\tc\nd\te\nf\tg\th\n";
        assert_eq!(align(text, 1, 1), "a bbbbbbbbbb c\nd e\nf g h\n");
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(align("héé\tx\nab\ty", 1, 2), "héé  x\nab   y");
    }

    #[test]
    fn text_without_tabs_is_unchanged() {
        assert_eq!(align("", 12, 2), "");
        assert_eq!(align("one\ntwo\n", 12, 2), "one\ntwo\n");
    }
}
