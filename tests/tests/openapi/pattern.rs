//! The subset of ECMA-262 regular expressions the document's `pattern`s
//! use, so the test can apply them without a regex dependency: anchors,
//! literals, `.`, classes (`[a-z0-9_]`, `[^\x00-\x1F]`, `\s`, `\S`, `\d`
//! inside or outside a class), and the quantifiers `*`, `+`, `?`, `{n}`,
//! `{m,n}`. Anything else panics, so a pattern outside the subset is
//! noticed rather than misread.

#[derive(Debug, Clone)]
enum Item {
    Range(char, char),
    Space,
    NotSpace,
    Digit,
}

impl Item {
    fn matches(&self, c: char) -> bool {
        match self {
            Item::Range(lo, hi) => (*lo..=*hi).contains(&c),
            Item::Space => c.is_whitespace(),
            Item::NotSpace => !c.is_whitespace(),
            Item::Digit => c.is_ascii_digit(),
        }
    }
}

#[derive(Debug, Clone)]
enum Atom {
    Any,
    Class { negated: bool, items: Vec<Item> },
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Any => c != '\n' && c != '\r',
            Atom::Class { negated, items } => items.iter().any(|i| i.matches(c)) != *negated,
        }
    }
}

#[derive(Debug, Clone)]
struct Piece {
    atom: Atom,
    min: usize,
    /// `None`: unbounded.
    max: Option<usize>,
}

/// A parsed pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    start: bool,
    end: bool,
    pieces: Vec<Piece>,
}

fn literal(c: char) -> Atom {
    Atom::Class { negated: false, items: vec![Item::Range(c, c)] }
}

/// An escape after `\`: a class item, or the literal character.
fn escape(chars: &mut std::iter::Peekable<std::str::Chars>) -> Item {
    match chars.next().expect("a pattern does not end in a backslash") {
        's' => Item::Space,
        'S' => Item::NotSpace,
        'd' => Item::Digit,
        'x' => {
            let hex: String = [chars.next().unwrap(), chars.next().unwrap()].iter().collect();
            let c = char::from_u32(u32::from_str_radix(&hex, 16).expect("\\xHH")).unwrap();
            Item::Range(c, c)
        }
        c if c.is_ascii_alphanumeric() => panic!("the escape \\{c} is outside the supported subset"),
        c => Item::Range(c, c),
    }
}

fn number(chars: &mut std::iter::Peekable<std::str::Chars>) -> usize {
    let mut s = String::new();
    while let Some(c) = chars.peek().filter(|c| c.is_ascii_digit()) {
        s.push(*c);
        chars.next();
    }
    s.parse().expect("a number in a quantifier")
}

impl Pattern {
    pub fn parse(p: &str) -> Pattern {
        let mut chars = p.chars().peekable();
        let start = chars.next_if_eq(&'^').is_some();
        let mut pieces = Vec::new();
        let mut end = false;
        while let Some(c) = chars.next() {
            let atom = match c {
                '$' if chars.peek().is_none() => {
                    end = true;
                    break;
                }
                '.' => Atom::Any,
                '\\' => Atom::Class { negated: false, items: vec![escape(&mut chars)] },
                '[' => {
                    let negated = chars.next_if_eq(&'^').is_some();
                    let mut items = Vec::new();
                    loop {
                        let c = chars.next().expect("a class is closed");
                        let item = match c {
                            ']' => break,
                            '\\' => escape(&mut chars),
                            c => Item::Range(c, c),
                        };
                        // A range `a-z` (a `-` last in the class is literal).
                        match (item, chars.peek()) {
                            (Item::Range(lo, _), Some('-')) => {
                                chars.next();
                                if chars.peek() == Some(&']') {
                                    items.push(Item::Range(lo, lo));
                                    items.push(Item::Range('-', '-'));
                                    continue;
                                }
                                let hi = match chars.next().unwrap() {
                                    '\\' => match escape(&mut chars) {
                                        Item::Range(h, _) => h,
                                        other => panic!("a range cannot end in {other:?}"),
                                    },
                                    h => h,
                                };
                                items.push(Item::Range(lo, hi));
                            }
                            (item, _) => items.push(item),
                        }
                    }
                    Atom::Class { negated, items }
                }
                '(' | ')' | '|' | '^' | '$' => panic!("`{c}` is outside the supported subset in {p}"),
                c => literal(c),
            };
            let (min, max) = match chars.peek() {
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('?') => (0, Some(1)),
                Some('{') => {
                    chars.next();
                    let m = number(&mut chars);
                    let n = if chars.next_if_eq(&',').is_some() { number(&mut chars) } else { m };
                    assert_eq!(chars.peek(), Some(&'}'), "a quantifier is closed in {p}");
                    (m, Some(n))
                }
                _ => (1, Some(1)),
            };
            if (min, max) != (1, Some(1)) {
                chars.next();
            }
            pieces.push(Piece { atom, min, max });
        }
        Pattern { start, end, pieces }
    }

    /// True when the pattern matches somewhere in `s` (anchors apart,
    /// ECMA-262 patterns are not anchored).
    pub fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        let starts = if self.start { 0..=0 } else { 0..=chars.len() };
        starts.into_iter().any(|i| self.here(&self.pieces, &chars, i))
    }

    fn here(&self, pieces: &[Piece], chars: &[char], i: usize) -> bool {
        let Some((p, rest)) = pieces.split_first() else { return !self.end || i == chars.len() };
        let mut n = 0;
        while p.max.is_none_or(|m| n < m) && chars.get(i + n).is_some_and(|c| p.atom.matches(*c)) {
            n += 1;
        }
        (p.min..=n).rev().any(|k| self.here(rest, chars, i + k))
    }

    /// The longest string an anchored pattern matches, when bounded.
    pub fn max_len(&self) -> Option<usize> {
        if !(self.start && self.end) {
            return None;
        }
        self.pieces.iter().try_fold(0, |sum, p| p.max.map(|m| sum + m))
    }
}

#[test]
fn the_subset_reads_the_documents_patterns() {
    let name = Pattern::parse("^[a-z][a-z0-9_]{0,63}$");
    assert!(name.is_match("generate_report") && !name.is_match("Generate") && !name.is_match(&"a".repeat(65)));
    assert_eq!(name.max_len(), Some(64));
    let id = Pattern::parse("^[A-Za-z0-9._:-]{1,100}$");
    assert!(id.is_match("a.b_c:d-1") && !id.is_match("a b") && !id.is_match(""));
    let text = Pattern::parse(r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$");
    assert!(text.is_match("two\nlines") && text.is_match("x") && !text.is_match(" \t ") && !text.is_match("a\u{1}b"));
    assert!(!text.is_match("a\u{9f}") && text.max_len().is_none());
    assert!(Pattern::parse("^/").is_match("/x") && !Pattern::parse("^/").is_match("x/"));
    let week = Pattern::parse(r"^\d{4}-W\d{2}$");
    assert!(week.is_match("2026-W47") && !week.is_match("2026-W7"));
    let cursor = Pattern::parse(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$");
    assert!(cursor.is_match("eyJ0Ijo.x-_Y") && !cursor.is_match("no-dot") && !cursor.is_match("a.b.c"));
}
